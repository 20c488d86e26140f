import { nullTranslator } from '@jupyterlab/translation';

import { SMDebugError } from '../../request';
import { IKernelStart } from '../../types';
import { KernelLauncher, kernelTitle } from '../launcher';
import {
  deferred,
  FakeOpener,
  KernelServer,
  notebookAt,
  startOf
} from './helpers';

const trans = nullTranslator.load('jupyter_sm_debug');

function launcher() {
  const server = new KernelServer();
  const opener = new FakeOpener();
  const kernels = new KernelLauncher({ api: server.api, opener, trans });
  let changes = 0;
  kernels.changed.connect(() => changes++);
  return { server, opener, kernels, changes: () => changes };
}

describe('KernelLauncher', () => {
  it('starts a kernel in the host, then opens a notebook on it', async () => {
    const { server, opener, kernels, changes } = launcher();
    const answer = deferred<IKernelStart>();
    server.answers.push(answer.promise);

    const opening = kernels.open('notebook', 'llama-ft', 'algo-1', 'ssh');
    // While the kernel starts, the host's state says what was asked.
    expect(kernels.state('llama-ft', 'algo-1').pending).toEqual({
      use: 'notebook',
      transport: 'ssh'
    });
    expect(kernels.state('llama-ft', 'algo-2').pending).toBeNull();
    expect(changes()).toBe(1);

    answer.resolve(startOf('k1'));
    const opened = await opening;
    expect(server.calls).toEqual([
      {
        method: 'POST',
        path: 'jobs/llama-ft/hosts/algo-1/kernels',
        body: { transport: 'ssh' }
      }
    ]);
    expect(opener.opened).toEqual([{ what: 'notebook', start: startOf('k1') }]);
    expect(opened).toEqual({
      start: startOf('k1'),
      use: 'notebook',
      widget: 'notebook-widget'
    });
    expect(kernels.state('llama-ft', 'algo-1')).toEqual({
      pending: null,
      error: null,
      result: opened
    });
    expect(changes()).toBe(2);
  });

  it("opens a console titled with the kernel's name", async () => {
    const { server, opener, kernels } = launcher();
    server.answers.push(startOf('k2', 'ssm'));
    await kernels.open('console', 'llama-ft', 'algo-2', 'ssm');
    expect(server.calls[0].body).toEqual({ transport: 'ssm' });
    expect(opener.opened).toEqual([
      {
        what: 'console',
        start: startOf('k2', 'ssm'),
        title: 'Python on algo-2 · llama-ft'
      }
    ]);
    expect(kernelTitle(trans, 'j', 'algo-3')).toBe('Python on algo-3 · j');
  });

  it("keeps the server's refusal for the row and opens nothing", async () => {
    const { server, opener, kernels } = launcher();
    server.answers.push(
      new SMDebugError({
        status: 409,
        code: 'no_python',
        message: 'algo-1 has no Python 3.',
        hint: 'Use an image with python3.'
      })
    );
    expect(
      await kernels.open('notebook', 'llama-ft', 'algo-1', 'ssh')
    ).toBeNull();
    const state = kernels.state('llama-ft', 'algo-1');
    expect(state.pending).toBeNull();
    expect(state.error?.code).toBe('no_python');
    expect(state.error?.status).toBe(409);
    expect(state.error?.hint).toBe('Use an image with python3.');
    expect(opener.opened).toEqual([]);
    expect(opener.shutdowns).toEqual([]);

    // Dismissed, it is gone; the next open starts afresh.
    kernels.clearError('llama-ft', 'algo-1');
    expect(kernels.state('llama-ft', 'algo-1').error).toBeNull();
    server.answers.push(startOf('k3'));
    expect(
      await kernels.open('notebook', 'llama-ft', 'algo-1', 'ssh')
    ).not.toBeNull();
  });

  it('shuts a kernel it could not open down again, and says so', async () => {
    const { server, opener, kernels } = launcher();
    server.answers.push(startOf('k4'));
    opener.fail = new Error('Console plugin missing');
    expect(
      await kernels.open('console', 'llama-ft', 'algo-1', 'ssh')
    ).toBeNull();
    expect(opener.shutdowns).toEqual(['k4']);
    const error = kernels.state('llama-ft', 'algo-1').error;
    expect(error?.message).toBe(
      'The kernel started, but no console opened. Console plugin missing'
    );
    expect(error?.hint).toBe('The kernel was shut down again. Try again.');
  });

  it('switches the notebook that was current when asked', async () => {
    const { server, opener, kernels } = launcher();
    const first = notebookAt('a.ipynb');
    const second = notebookAt('b.ipynb');
    opener.current = first.notebook;
    const answer = deferred<IKernelStart>();
    server.answers.push(answer.promise);

    const opening = kernels.open('switch', 'llama-ft', 'algo-1', 'ssh');
    // The user moves to another notebook while the kernel starts.
    opener.current = second.notebook;
    answer.resolve(startOf('k5'));
    expect((await opening)?.use).toBe('switch');

    expect(first.changes).toEqual([startOf('k5').kernel]);
    expect(second.changes).toEqual([]);
    expect(opener.opened).toEqual([]);
  });

  it('starts no kernel to switch when no notebook is current', async () => {
    const { server, kernels } = launcher();
    expect(await kernels.open('switch', 'llama-ft', 'algo-1', 'ssh')).toBe(
      null
    );
    expect(server.calls).toEqual([]);
    const error = kernels.state('llama-ft', 'algo-1').error;
    expect(error?.code).toBe('no_notebook');
    expect(error?.hint).toMatch(/Notebook for a new one/);
  });

  it('opens once per host at a time; other hosts are their own', async () => {
    const { server, opener, kernels } = launcher();
    const answer = deferred<IKernelStart>();
    server.answers.push(answer.promise, startOf('k7'));

    const first = kernels.open('notebook', 'llama-ft', 'algo-1', 'ssh');
    // A double click, or Console while Notebook starts: refused at once.
    expect(
      await kernels.open('console', 'llama-ft', 'algo-1', 'ssh')
    ).toBeNull();
    expect(kernels.state('llama-ft', 'algo-1').error).toBeNull();
    // Another host starts meanwhile.
    expect(
      (await kernels.open('console', 'llama-ft', 'algo-2', 'ssh'))?.start
    ).toEqual(startOf('k7'));

    answer.resolve(startOf('k6'));
    expect((await first)?.start).toEqual(startOf('k6'));
    expect(server.calls.map(call => call.path)).toEqual([
      'jobs/llama-ft/hosts/algo-1/kernels',
      'jobs/llama-ft/hosts/algo-2/kernels'
    ]);
    expect(opener.opened.map(o => o.what)).toEqual(['console', 'notebook']);
  });
});
