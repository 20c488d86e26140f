import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator } from '@jupyterlab/translation';

import { PANEL_ID, SMDebugPanel } from './panel';

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
  optional: [ISettingRegistry, ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new SMDebugPanel({ translator });
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }
  }
};

export default plugin;
