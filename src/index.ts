import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITerminalTracker } from '@jupyterlab/terminal';
import { ITranslator } from '@jupyterlab/translation';

import { SMDebugAPI } from './api';
import { AttachManager, ITerminalTab } from './attach';
import { addCommands, CommandIDs } from './commands';
import { LogsWidget } from './logsWidget';
import { addHostCommands } from './hostcommands';
import { JobsModel } from './model';
import { PANEL_ID, SMDebugPanel } from './panel';
import { SMDebugError } from './request';
import { guardRestoredTerminals } from './restore';
import { LogStream, Transport } from './types';

/**
 * The plugin id; also the id of the settings schema `schema/plugin.json`.
 */
export const PLUGIN_ID = 'jupyter-sm-debug:plugin';

/**
 * The SageMaker Debug sidebar.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'A shell inside a running Amazon SageMaker training container, one click away.',
  autoStart: true,
  requires: [ITranslator],
  optional: [
    ISettingRegistry,
    ILayoutRestorer,
    ICommandPalette,
    ITerminalTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    terminals: ITerminalTracker | null
  ) => {
    const trans = translator.load('jupyter_sm_debug');
    const api = new SMDebugAPI();
    const model = new JobsModel({ api });

    const attach = new AttachManager({
      api,
      translator,
      openTerminal: async name => {
        if (!app.commands.hasCommand('terminal:open')) {
          throw new SMDebugError({
            status: 0,
            code: 'terminals_unavailable',
            message: trans.__('JupyterLab terminals are not available here.'),
            hint: trans.__(
              'Enable terminals on the Jupyter server (ServerApp.terminals_enabled) and reload.'
            )
          });
        }
        return (await app.commands.execute('terminal:open', {
          name
        })) as ITerminalTab;
      },
      activate: id => app.shell.activateById(id),
      findTab: name =>
        (terminals?.find(tab => tab.content.session.name === name) as
          ITerminalTab | undefined) ?? undefined
    });

    if (terminals) {
      // Now, before the layout restorer reopens terminal tabs by name.
      void guardRestoredTerminals({
        app,
        attach,
        tracker: terminals,
        trans,
        panelId: PANEL_ID
      });
    }

    // Logs tabs: one per host, found again rather than opened twice, and
    // reopened after a page reload.
    const logsTracker = new WidgetTracker<LogsWidget>({
      namespace: 'sm-debug-logs'
    });
    const openLogs = async (job: string, host: string, stream: LogStream) => {
      let widget = logsTracker.find(w => w.id === LogsWidget.idFor(job, host));
      if (!widget) {
        widget = new LogsWidget({ api, job, host, stream, trans });
        app.shell.add(widget, 'main');
        void logsTracker.add(widget);
      }
      widget.model.setStream(stream);
      app.shell.activateById(widget.id);
      return widget;
    };
    if (restorer) {
      void restorer.restore(logsTracker, {
        command: CommandIDs.openLogs,
        args: widget => ({
          job: widget.model.job,
          host: widget.model.host,
          stream: widget.model.stream
        }),
        name: widget => widget.id
      });
    }

    const panel = new SMDebugPanel({
      model,
      attach,
      translator,
      actions: {
        debugCopy: job =>
          void app.commands.execute(CommandIDs.debugCopy, { job }),
        stopJob: job => void app.commands.execute(CommandIDs.stopJob, { job }),
        openLogs: (job, host) =>
          void app.commands.execute(CommandIDs.openLogs, { job, host }),
        allHosts: (job, view, options) =>
          void app.commands.execute(
            {
              stacks: CommandIDs.stacks,
              run: CommandIDs.runOnHosts,
              state: CommandIDs.hostState
            }[view],
            { job, ...options }
          ),
        openPort: (job, host, transport) =>
          void app.commands.execute(CommandIDs.openPort, {
            job,
            host,
            transport
          })
      }
    });
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }

    addCommands({ app, model, attach, trans, panelId: PANEL_ID, openLogs });
    addHostCommands({ app, api, model, trans });
    if (palette) {
      const category = trans.__('SageMaker Debug');
      for (const command of [
        CommandIDs.open,
        CommandIDs.refresh,
        CommandIDs.attach,
        CommandIDs.toggleRemoteDebug,
        CommandIDs.debugCopy,
        CommandIDs.stopJob,
        CommandIDs.openPort
      ]) {
        palette.addItem({ command, category });
      }
    }

    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            model.refreshInterval = settings.get('refreshInterval')
              .composite as number;
            model.defaultTransport = settings.get('defaultTransport')
              .composite as Transport;
            model.debugCopyHoldSeconds = settings.get('debugCopyHoldSeconds')
              .composite as number;
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error(`${PLUGIN_ID}: could not load the settings`, reason);
        });
    }
  }
};

export default plugin;
