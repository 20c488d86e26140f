import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';

import { ISMDebugAPI } from '../api';
import { KernelLauncher } from './launcher';
import { INotebooks, labOpener } from './opener';

export { KernelButtons } from './buttons';
export {
  IHostKernels,
  IKernelOpened,
  KernelLauncher,
  KernelUse,
  kernelTitle
} from './launcher';

/**
 * The kernel launcher of the app: JupyterLab's notebook and console on
 * kernels the server starts in hosts. The notebook tracker (for "switch the
 * current notebook") is looked up once, when there is one.
 */
export function createKernelLauncher(
  app: JupyterFrontEnd,
  api: Pick<ISMDebugAPI, 'startKernel'>,
  trans: TranslationBundle
): KernelLauncher {
  let notebooks: INotebooks | null = null;
  void app
    .resolveOptionalService(INotebookTracker)
    .then(tracker => (notebooks = tracker));
  return new KernelLauncher({
    api,
    trans,
    opener: labOpener(app, () => notebooks)
  });
}
