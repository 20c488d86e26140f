import { JupyterFrontEnd } from '@jupyterlab/application';
import { ConsolePanel, IConsoleTracker } from '@jupyterlab/console';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';

import { ISMDebugAPI } from '../api';
import { KernelLauncher } from './launcher';
import { INotebooks, labOpener } from './opener';
import { untrustedWhileOnHost } from './trust';

export { KernelButtons, KernelError } from './buttons';
export {
  IHostKernels,
  IKernelOpened,
  KernelLauncher,
  KernelUse,
  kernelTitle
} from './launcher';
export { isHostKernel } from './trust';

/**
 * The kernel launcher of the app: JupyterLab's notebook and console on
 * kernels the server starts in hosts. The notebook and console trackers are
 * looked up once, when there are any: the current notebook for "switch",
 * and every notebook and console, whose cells stay untrusted while their
 * kernel runs in a host (`untrustedWhileOnHost`).
 */
export function createKernelLauncher(
  app: JupyterFrontEnd,
  api: Pick<ISMDebugAPI, 'startKernel'>,
  trans: TranslationBundle
): KernelLauncher {
  let notebooks: INotebooks | null = null;
  void app.resolveOptionalService(INotebookTracker).then(tracker => {
    notebooks = tracker;
    tracker?.forEach(guardNotebook);
    tracker?.widgetAdded.connect((_, panel) => guardNotebook(panel));
  });
  void app.resolveOptionalService(IConsoleTracker).then(tracker => {
    tracker?.forEach(guardConsole);
    tracker?.widgetAdded.connect((_, panel) => guardConsole(panel));
  });
  return new KernelLauncher({
    api,
    trans,
    opener: labOpener(app, () => notebooks)
  });
}

function guardNotebook(panel: NotebookPanel): void {
  void panel.context.ready.then(() => {
    const cells = panel.content.model?.cells;
    if (!cells || panel.isDisposed) {
      return;
    }
    const track = untrustedWhileOnHost(panel.sessionContext, () => cells);
    cells.changed.connect((_, change) => change.newValues.forEach(track));
  });
}

function guardConsole(panel: ConsolePanel): void {
  const cells = panel.console.cells;
  const models = function* () {
    for (const cell of cells) {
      yield cell.model;
    }
  };
  const track = untrustedWhileOnHost(panel.sessionContext, models);
  cells.changed.connect((_, change) =>
    change.newValues.forEach(cell => track(cell.model))
  );
}
