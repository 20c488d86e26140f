import { nullTranslator } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { SMDebugError } from '../../request';
import { IKernelStart } from '../../types';
import { KernelButtons, KernelError } from '../buttons';
import { KernelLauncher } from '../launcher';
import { deferred, FakeOpener, KernelServer, startOf } from './helpers';

const trans = nullTranslator.load('jupyter_sm_debug');

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

/**
 * A host row's kernel buttons and error, rendered in the page.
 */
async function row(ok = true) {
  const server = new KernelServer();
  const opener = new FakeOpener();
  const kernels = new KernelLauncher({ api: server.api, opener, trans });
  const props = {
    kernels,
    job: 'llama-ft',
    host: 'algo-1',
    transport: 'ssm' as const,
    ok,
    reason: ok ? '' : 'Remote debug is off for llama-ft.',
    reasonId: 'reason',
    trans
  };
  const widget = ReactWidget.create(
    <div>
      <KernelButtons {...props} />
      <KernelError {...props} />
    </div>
  );
  Widget.attach(widget, document.body);
  await settle();
  const button = (use: string) =>
    widget.node.querySelector(
      `.jp-SMDebug-kernelButton[data-use="${use}"]`
    ) as HTMLButtonElement;
  const alert = () => widget.node.querySelector('[role="alert"]');
  return { server, opener, kernels, widget, button, alert };
}

describe('KernelButtons', () => {
  it('opens a notebook from the row and waits while the kernel starts', async () => {
    const { server, opener, widget, button } = await row();
    const notebook = button('notebook');
    expect(notebook.textContent).toBe('Notebook');
    expect(notebook.getAttribute('aria-label')).toBe(
      'New notebook on algo-1 of llama-ft over SSM'
    );
    expect(button('console').textContent).toBe('Console');

    const answer = deferred<IKernelStart>();
    server.answers.push(answer.promise);
    notebook.click();
    await settle();
    expect(server.calls.map(call => call.body)).toEqual([{ transport: 'ssm' }]);
    expect(button('notebook').textContent).toBe('Starting…');
    expect(button('notebook').getAttribute('aria-busy')).toBe('true');
    // Both wait: one kernel at a time per host.
    expect(button('console').getAttribute('aria-disabled')).toBe('true');
    button('console').click();
    await settle();
    expect(server.calls).toHaveLength(1);

    answer.resolve(startOf('k1', 'ssm'));
    await settle();
    expect(opener.opened.map(o => o.what)).toEqual(['notebook']);
    expect(button('notebook').textContent).toBe('Notebook');
    expect(button('console').getAttribute('aria-disabled')).toBe('false');
    widget.dispose();
  });

  it('shows a refusal under the row until dismissed', async () => {
    const { server, widget, button, alert } = await row();
    server.answers.push(
      new SMDebugError({
        status: 409,
        code: 'no_python',
        message: 'algo-1 has no Python 3.',
        hint: 'Use an image with python3.'
      })
    );
    button('console').click();
    await settle();
    expect(alert()?.getAttribute('data-code')).toBe('no_python');
    expect(alert()?.textContent).toContain('algo-1 has no Python 3.');
    expect(alert()?.textContent).toContain('Use an image with python3.');
    (
      widget.node.querySelector(
        '[aria-label="Dismiss this message"]'
      ) as HTMLButtonElement
    ).click();
    await settle();
    expect(alert()).toBeNull();
    widget.dispose();
  });

  it('is disabled with the reason when the transport cannot reach the host', async () => {
    const { server, widget, button } = await row(false);
    const notebook = button('notebook');
    expect(notebook.getAttribute('aria-disabled')).toBe('true');
    expect(notebook.getAttribute('aria-describedby')).toBe('reason');
    expect(notebook.title).toBe('Remote debug is off for llama-ft.');
    notebook.click();
    button('console').click();
    await settle();
    expect(server.calls).toEqual([]);
    widget.dispose();
  });
});
