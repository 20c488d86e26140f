import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';

import { AttachManager } from '../../attach';
import { addCommands, CommandIDs } from '../../commands';
import { JobsModel } from '../../model';
import { SMDebugError } from '../../request';
import { TabManager } from '../../tabs';
import { KernelLauncher } from '../launcher';
import { FakeOpener, KernelServer, notebookAt, startOf } from './helpers';

const trans = nullTranslator.load('jupyter_sm_debug');

function page() {
  const server = new KernelServer();
  const opener = new FakeOpener();
  const kernels = new KernelLauncher({ api: server.api, opener, trans });
  const commands = new CommandRegistry();
  const shell = { add: () => undefined, activateById: () => undefined };
  const model = new JobsModel({
    api: server.api,
    defaultTransport: 'ssh'
  });
  const ids = addCommands({
    app: { commands, shell } as unknown as JupyterFrontEnd,
    model,
    attach: {} as AttachManager,
    tabs: new TabManager({ shell, restorer: null }),
    trans,
    panelId: 'panel',
    kernels
  });
  return { server, opener, commands, ids };
}

describe('the kernel commands', () => {
  it('are in the palette, named after the host they open', () => {
    const { commands, ids } = page();
    for (const id of [
      CommandIDs.openNotebook,
      CommandIDs.switchNotebook,
      CommandIDs.openConsole
    ]) {
      expect(ids).toContain(id);
    }
    const args = { job: 'llama-ft', host: 'algo-2' };
    expect(commands.label(CommandIDs.openNotebook, args)).toBe(
      'New Notebook on algo-2 of llama-ft'
    );
    expect(commands.label(CommandIDs.openConsole, args)).toBe(
      'Python Console on algo-2 of llama-ft'
    );
    expect(commands.label(CommandIDs.switchNotebook, {})).toBe(
      'Switch the Notebook to a SageMaker Training Host…'
    );
  });

  it('open a notebook or console on the host over the default transport', async () => {
    const { server, opener, commands } = page();
    server.answers.push(startOf('k1'), startOf('k2', 'ssm'));
    const args = { job: 'llama-ft', host: 'algo-1' };
    expect(await commands.execute(CommandIDs.openNotebook, args)).toBe('k1');
    expect(
      await commands.execute(CommandIDs.openConsole, {
        ...args,
        transport: 'ssm'
      })
    ).toBe('k2');
    expect(server.calls.map(call => [call.path, call.body])).toEqual([
      ['jobs/llama-ft/hosts/algo-1/kernels', { transport: 'ssh' }],
      ['jobs/llama-ft/hosts/algo-1/kernels', { transport: 'ssm' }]
    ]);
    expect(opener.opened.map(o => [o.what, o.title])).toEqual([
      ['notebook', undefined],
      ['console', 'Python on algo-1 · llama-ft']
    ]);
  });

  it('switch the current notebook', async () => {
    const { server, opener, commands } = page();
    const { notebook, changes } = notebookAt('a.ipynb');
    opener.current = notebook;
    server.answers.push(startOf('k3'));
    await commands.execute(CommandIDs.switchNotebook, {
      job: 'llama-ft',
      host: 'algo-1'
    });
    expect(changes).toEqual([startOf('k3').kernel]);
  });

  it('say a refusal in a notification, message and hint', async () => {
    const { server, commands } = page();
    server.answers.push(
      new SMDebugError({
        status: 409,
        code: 'no_python',
        message: 'algo-1 has no Python 3.',
        hint: 'Use an image with python3.'
      })
    );
    const shown = jest.spyOn(Notification, 'error');
    expect(
      await commands.execute(CommandIDs.openNotebook, {
        job: 'llama-ft',
        host: 'algo-1'
      })
    ).toBeNull();
    expect(shown).toHaveBeenCalledWith(
      'algo-1 has no Python 3. Use an image with python3.',
      { autoClose: false }
    );
    shown.mockRestore();
  });
});
