import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { ILab, INotebooks, labOpener } from '../opener';
import { startOf } from './helpers';

/**
 * JupyterLab's commands, sessions and kernels as far as the opener uses
 * them, recording every call in order.
 */
function lab() {
  const log: [string, unknown][] = [];
  const commands = new CommandRegistry();
  for (const id of ['notebook:create-new', 'console:create']) {
    commands.addCommand(id, {
      describedBy: { args: { type: 'object' } },
      execute: (args: ReadonlyPartialJSONObject) => {
        log.push([id, args]);
        return `${id} widget`;
      }
    });
  }
  const disposed: string[] = [];
  const app = {
    commands,
    serviceManager: {
      sessions: {
        startNew: async (options: { path: string }) => {
          log.push(['sessions.startNew', options]);
          return { dispose: () => disposed.push(options.path) };
        }
      },
      kernels: {
        shutdown: async (id: string) => {
          log.push(['kernels.shutdown', id]);
        }
      },
      kernelspecs: {
        refreshSpecs: async () => {
          log.push(['kernelspecs.refreshSpecs', null]);
        }
      }
    }
  } as unknown as ILab;
  return { app, log, disposed };
}

describe('labOpener', () => {
  it("creates JupyterLab's new notebook with the kernel's id", async () => {
    const { app, log } = lab();
    const opener = labOpener(app, () => null);
    expect(await opener.notebook(startOf('k1'))).toBe(
      'notebook:create-new widget'
    );
    // The kernel's own spec is learnt first (its display name). No cwd:
    // JupyterLab's file browser directory, or the root.
    expect(log).toEqual([
      ['kernelspecs.refreshSpecs', null],
      ['notebook:create-new', { kernelId: 'k1', kernelName: 'smdebug_k1' }]
    ]);
  });

  it('makes the console session on the kernel, then a console that only connects to it', async () => {
    const { app, log, disposed } = lab();
    const opener = labOpener(app, () => null);
    expect(await opener.console(startOf('k2'), 'Python on algo-1 · j')).toBe(
      'console:create widget'
    );
    expect(log.map(([what]) => what)).toEqual([
      'kernelspecs.refreshSpecs',
      'sessions.startNew',
      'console:create'
    ]);
    const session = log[1][1] as { path: string };
    expect(session).toEqual({
      path: expect.stringMatching(/^sm-debug-console-[0-9a-f-]{36}$/),
      name: 'Python on algo-1 · j',
      type: 'console',
      kernel: { id: 'k2', name: 'smdebug_k2' }
    });
    // Our connection is let go; the console connects to the session by path.
    expect(disposed).toEqual([session.path]);
    expect(log[2][1]).toEqual({
      path: session.path,
      name: 'Python on algo-1 · j',
      kernelPreference: {
        id: 'k2',
        name: 'smdebug_k2',
        // Never the server's default kernel under the host's title.
        shouldStart: false,
        autoStartDefault: false,
        shutdownOnDispose: true
      }
    });
    // Two consoles, two sessions.
    await opener.console(startOf('k3'), 'Python on algo-1 · j');
    expect((log[4][1] as { path: string }).path).not.toBe(session.path);
  });

  it('switches the current notebook of the tracker, when there is one', async () => {
    const { app, log } = lab();
    const changes: unknown[] = [];
    let tracker: INotebooks | null = null;
    const opener = labOpener(app, () => tracker);
    expect(opener.currentNotebook()).toBeNull();
    tracker = { currentWidget: null };
    expect(opener.currentNotebook()).toBeNull();
    tracker = {
      currentWidget: {
        context: { path: 'dir/a.ipynb' },
        sessionContext: {
          changeKernel: async kernel => changes.push(kernel)
        }
      }
    };
    const notebook = opener.currentNotebook();
    expect(notebook?.path).toBe('dir/a.ipynb');
    await notebook?.changeKernel(startOf('k4').kernel);
    expect(changes).toEqual([{ id: 'k4', name: 'smdebug_k4' }]);
    expect(log).toEqual([['kernelspecs.refreshSpecs', null]]);
  });

  it("shuts a kernel down through JupyterLab's kernel manager", async () => {
    const { app, log } = lab();
    await labOpener(app, () => null).shutdown('k5');
    expect(log).toEqual([['kernels.shutdown', 'k5']]);
  });
});
