import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITerminalTracker } from '@jupyterlab/terminal';
import { ITranslator } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { SMDebugAPI } from './api';
import { AttachManager, ITerminalTab } from './attach';
import { addCommands, CommandIDs } from './commands';
import { filesPlugin } from './files/plugin';
import { IHostFiles } from './files/service';
import { createKernelLauncher } from './kernels';
import { ISMDebugModel, JobsModel } from './model';
import { PANEL_ID, SMDebugPanel } from './panel';
import { SMDebugError } from './request';
import { guardRestoredTerminals } from './restore';
import { TabManager } from './tabs';
import { isTransport } from './types';

export { ISMDebugModel } from './model';

/**
 * The plugin id; also the id of the settings schema `schema/plugin.json`.
 */
export const PLUGIN_ID = 'jupyter-sm-debug:plugin';

/**
 * The model: the job list, the jobs' descriptions, the actions on them and
 * the REST client, for every plugin that wants them. It follows the settings.
 */
const modelPlugin: JupyterFrontEndPlugin<ISMDebugModel> = {
  id: 'jupyter-sm-debug:model',
  description: 'The SageMaker Debug job list and the actions on its jobs.',
  autoStart: true,
  provides: ISMDebugModel,
  requires: [ITranslator],
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator,
    settingRegistry: ISettingRegistry | null
  ): ISMDebugModel => {
    const trans = translator.load('jupyter_sm_debug');
    const model = new JobsModel({
      api: new SMDebugAPI(),
      noSSHClientReason: trans.__(
        'The Jupyter server has no ssh client: install OpenSSH there, or attach over SSM.'
      )
    });
    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            model.refreshInterval = settings.get('refreshInterval')
              .composite as number;
            const transport = settings.get('defaultTransport').composite;
            if (isTransport(transport)) {
              model.defaultTransport = transport;
            }
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
    return model;
  }
};

/**
 * The SageMaker Debug sidebar, its commands and its tabs.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'A shell inside a running Amazon SageMaker training container, one click away.',
  autoStart: true,
  requires: [ITranslator, ISMDebugModel],
  optional: [ILayoutRestorer, ICommandPalette, ITerminalTracker, IHostFiles],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator,
    model: ISMDebugModel,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    terminals: ITerminalTracker | null,
    files: IHostFiles | null
  ) => {
    const trans = translator.load('jupyter_sm_debug');

    const attach = new AttachManager({
      api: model.api,
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

    // Logs, stacks, host state, run output and forwarded pages: found again
    // rather than opened twice, and opened again after a page reload.
    const tabs = new TabManager({ shell: app.shell, restorer });
    // Notebooks and consoles whose kernel runs in a host.
    const kernels = createKernelLauncher(app, model.api, trans);
    const ids = addCommands({
      app,
      model,
      attach,
      tabs,
      trans,
      panelId: PANEL_ID,
      files,
      kernels
    });
    if (palette) {
      const category = trans.__('SageMaker Debug');
      for (const command of ids) {
        palette.addItem({ command, category });
      }
    }

    const run = (command: string, args: ReadonlyPartialJSONObject) =>
      void app.commands.execute(command, args);
    const panel = new SMDebugPanel({
      model,
      attach,
      translator,
      actions: {
        debugCopy: job => run(CommandIDs.debugCopy, { job }),
        stopJob: job => run(CommandIDs.stopJob, { job }),
        openLogs: (job, host) => run(CommandIDs.openLogs, { job, host }),
        allHosts: (job, view, options) =>
          run(
            {
              stacks: CommandIDs.stacks,
              run: CommandIDs.runOnHosts,
              state: CommandIDs.hostState
            }[view],
            { job, ...options }
          ),
        openPort: (job, host, transport) =>
          run(CommandIDs.openPort, { job, host, transport }),
        openFiles: files
          ? (job, host, transport) =>
              run(CommandIDs.files, { job, host, transport })
          : undefined,
        kernels
      }
    });
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }
  }
};

export default [modelPlugin, filesPlugin, plugin];
