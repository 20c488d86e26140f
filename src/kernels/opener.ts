import { JupyterFrontEnd } from '@jupyterlab/application';
import { Session } from '@jupyterlab/services';
import { UUID } from '@lumino/coreutils';

import { IKernelStart } from '../types';
import { IKernelOpener, ISwitchableNotebook } from './launcher';

/**
 * What the opener needs of the notebook tracker: the current notebook panel.
 */
export interface INotebooks {
  readonly currentWidget: {
    readonly context: { readonly path: string };
    readonly sessionContext: {
      changeKernel(options: { id: string; name: string }): Promise<unknown>;
    };
  } | null;
}

/**
 * The parts of JupyterLab the opener uses.
 */
export type ILab = Pick<JupyterFrontEnd, 'commands'> & {
  serviceManager: {
    sessions: Pick<JupyterFrontEnd['serviceManager']['sessions'], 'startNew'>;
    kernels: Pick<JupyterFrontEnd['serviceManager']['kernels'], 'shutdown'>;
    kernelspecs: Pick<
      JupyterFrontEnd['serviceManager']['kernelspecs'],
      'refreshSpecs'
    >;
  };
};

/**
 * JupyterLab's own notebook and console on a kernel the server started in a
 * host: nothing of ours renders their outputs, so they stay as JupyterLab
 * treats any kernel's outputs (untrusted: no script of a container's output
 * runs on this origin).
 *
 * @param notebooks the notebook tracker; null (switch unavailable) when the
 * notebook plugin is not there
 */
export function labOpener(
  app: ILab,
  notebooks: () => INotebooks | null
): IKernelOpener {
  // Each kernel has a kernel spec of its own, made with it: the page learns
  // it (its display name, `Python on algo-1 · <job>`) before showing it.
  const learnSpec = () =>
    app.serviceManager.kernelspecs.refreshSpecs().catch(() => undefined);
  return {
    // A new Untitled.ipynb in the file browser's directory (the root when
    // there is none), its session on the kernel by id.
    notebook: async (start: IKernelStart) => {
      await learnSpec();
      return app.commands.execute('notebook:create-new', {
        kernelId: start.kernel.id,
        kernelName: start.kernel.name
      });
    },

    // The console's session is made here, on the kernel, and the console
    // only connects to it (`shouldStart: false`): restored after the server
    // restarted, when that session is gone, it shows "No Kernel" instead of
    // starting the server's default kernel under the host's title. Closing
    // the console shuts its kernel down (nothing else uses it).
    console: async (start: IKernelStart, title: string) => {
      await learnSpec();
      const path = `sm-debug-console-${UUID.uuid4()}`;
      const kernel = { id: start.kernel.id, name: start.kernel.name };
      const options: Session.ISessionOptions = {
        path,
        name: title,
        type: 'console',
        kernel
      };
      const session = await app.serviceManager.sessions.startNew(options);
      session.dispose(); // the connection only, not the session
      return app.commands.execute('console:create', {
        path,
        name: title,
        kernelPreference: {
          ...kernel,
          shouldStart: false,
          autoStartDefault: false,
          shutdownOnDispose: true
        }
      });
    },

    currentNotebook: (): ISwitchableNotebook | null => {
      const panel = notebooks()?.currentWidget;
      if (!panel) {
        return null;
      }
      return {
        path: panel.context.path,
        changeKernel: async kernel => {
          await learnSpec();
          return panel.sessionContext.changeKernel(kernel);
        }
      };
    },

    shutdown: (kernelId: string) =>
      app.serviceManager.kernels.shutdown(kernelId)
  };
}
