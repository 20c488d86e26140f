import { CodeCellModel, MarkdownCellModel } from '@jupyterlab/cells';
import { Signal } from '@lumino/signaling';

import { isHostKernel, ITrustable, untrustedWhileOnHost } from '../trust';

/**
 * A session context whose kernel the test changes.
 */
class Session {
  session: { kernel: { name: string } | null } | null = null;
  kernelChanged = new Signal<this, void>(this);

  use(name: string | null) {
    this.session = { kernel: name ? { name } : null };
    this.kernelChanged.emit();
  }
}

const HOST = 'sm-debug-0123456789ab';

/**
 * A cell as a run leaves it: JupyterLab's CodeCell.execute marks the model
 * trusted, then outputs arrive.
 */
function run(cell: CodeCellModel, html: string) {
  cell.trusted = true;
  cell.outputs.add({
    output_type: 'display_data',
    data: { 'text/html': html },
    metadata: {}
  });
}

describe('untrustedWhileOnHost', () => {
  // Cell models outside a notebook: Yjs warns about each one.
  let quiet: jest.SpyInstance;
  beforeAll(() => {
    quiet = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterAll(() => quiet.mockRestore());

  it('knows host kernels by their spec name', () => {
    expect(isHostKernel({ name: HOST })).toBe(true);
    expect(isHostKernel({ name: 'python3' })).toBe(false);
    expect(isHostKernel({ name: 'sm-debug-0123456789ab-x' })).toBe(false);
    expect(isHostKernel(null)).toBe(false);
  });

  it("keeps a run cell's outputs untrusted while the kernel runs in a host", () => {
    const session = new Session();
    session.use(HOST);
    const cell = new CodeCellModel();
    const cells: CodeCellModel[] = [cell];
    const track = untrustedWhileOnHost(session, () => cells);

    run(cell, '<script>alert(1)</script>');
    expect(cell.trusted).toBe(false);
    expect(cell.outputs.trusted).toBe(false);
    expect(cell.outputs.get(0).trusted).toBe(false);
    // Saved, it is not signed as trusted either.
    expect(cell.getMetadata('trusted')).toBeUndefined();
    expect(cell.toJSON().metadata.trusted).toBeUndefined();

    // "Trust Notebook" is undone too.
    cell.trusted = true;
    expect(cell.trusted).toBe(false);
    expect(cell.outputs.get(0).trusted).toBe(false);

    // A cell added later (`track`) is guarded the same way.
    const later = new CodeCellModel();
    cells.push(later);
    track(later);
    run(later, '<b>x</b>');
    expect(later.trusted).toBe(false);
    expect(later.outputs.get(0).trusted).toBe(false);
  });

  it("leaves a local kernel's cells as JupyterLab has them", () => {
    const session = new Session();
    session.use('python3');
    const cell = new CodeCellModel();
    untrustedWhileOnHost(session, () => [cell]);
    run(cell, '<b>local</b>');
    expect(cell.trusted).toBe(true);
    expect(cell.outputs.get(0).trusted).toBe(true);
  });

  it('distrusts every cell when the notebook is switched to a host', () => {
    const session = new Session();
    session.use('python3');
    const code = new CodeCellModel();
    const markdown = new MarkdownCellModel();
    untrustedWhileOnHost(session, () => [code, markdown as ITrustable]);
    run(code, '<b>before</b>');
    expect(code.trusted).toBe(true);

    session.use(HOST);
    expect(code.trusted).toBe(false);
    expect(code.outputs.get(0).trusted).toBe(false);
    expect(code.getMetadata('trusted')).toBeUndefined();
    run(code, '<b>after</b>');
    expect(code.trusted).toBe(false);

    // Back on a local kernel, a run is trusted again.
    session.use('python3');
    run(code, '<b>local again</b>');
    expect(code.trusted).toBe(true);
    code.dispose();
    markdown.dispose();
  });
});
