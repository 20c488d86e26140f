import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { TerminalAPI } from '@jupyterlab/services';
import type { ITerminalTracker } from '@jupyterlab/terminal';
import { TranslationBundle } from '@jupyterlab/translation';

import {
  AttachManager,
  IRestoreResult,
  ITerminalTab,
  parseTerminalName
} from './attach';

/**
 * Keep a reloaded page from presenting a local shell as a container session.
 *
 * JupyterLab restores a terminal tab by name; when the server no longer has
 * that terminal it starts a plain local shell under the name. So the server's
 * terminals are listed now, during activation, before the layout restorer
 * runs (it waits for `app.started`); once the tabs are back, the attach manager
 * takes over those whose session survived and closes the others.
 *
 * @returns what became of the restored tabs (for tests and diagnostics)
 */
export async function guardRestoredTerminals(options: {
  app: JupyterFrontEnd;
  attach: AttachManager;
  tracker: ITerminalTracker;
  trans: TranslationBundle;
  panelId: string;
}): Promise<IRestoreResult> {
  const { app, attach, tracker, trans, panelId } = options;
  const before = TerminalAPI.listRunning(
    app.serviceManager.serverSettings
  ).then(
    models => new Set(models.map(model => model.name)),
    reason => {
      console.warn(
        'jupyter-sm-debug: could not list the terminals before the restore',
        reason
      );
      return null;
    }
  );
  await Promise.all([app.restored, tracker.restored]);
  const tabs: ITerminalTab[] = [];
  tracker.forEach(tab => {
    if (parseTerminalName(tab.content.session.name)) {
      tabs.push(tab as unknown as ITerminalTab);
    }
  });
  const running = tabs.length > 0 ? await before : new Set<string>();
  const result = await attach.adoptRestored(tabs, running);
  const closed = result.closed;
  if (closed.length === 0) {
    return result;
  }

  const show = {
    label: trans.__('Show SageMaker Debug'),
    callback: () => app.shell.activateById(panelId)
  };
  if (closed.length === 1) {
    const [{ job, host, transport }] = closed;
    const message =
      running === null
        ? trans.__(
            'Could not check that the session on %1 of %2 still runs; its tab was closed. Attach again to reconnect.',
            host,
            job
          )
        : trans.__(
            'The session on %1 of %2 ended while the page was away; its tab was closed.',
            host,
            job
          );
    Notification.warning(message, {
      autoClose: false,
      actions: [
        {
          label: trans.__('Attach again'),
          displayType: 'accent',
          callback: () => {
            void attach.attach(job, host, transport).then(session => {
              if (session.status === 'failed' && session.error) {
                const { message, hint } = session.error;
                Notification.error(hint ? `${message} ${hint}` : message, {
                  autoClose: false
                });
              }
            });
          }
        },
        show
      ]
    });
  } else {
    const message =
      running === null
        ? trans.__(
            'Could not check that %1 SageMaker sessions still run; their tabs were closed. Attach again to reconnect.',
            closed.length
          )
        : trans.__(
            '%1 SageMaker sessions ended while the page was away; their tabs were closed.',
            closed.length
          );
    Notification.warning(message, { autoClose: false, actions: [show] });
  }
  return result;
}
