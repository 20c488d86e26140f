import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ITranslator } from '@jupyterlab/translation';

import { HostFiles, IHostFiles } from './service';

/** The context-menu command of a host's browser that copies a container path. */
export const COPY_CONTAINER_PATH = 'sm-debug:files-copy-container-path';

/**
 * A training host's files as a JupyterLab drive (issue 26): the drives, their
 * file browser tabs and the guard on their documents. The main plugin's
 * "Files" command and host rows use it when it is there.
 */
export const filesPlugin: JupyterFrontEndPlugin<IHostFiles> = {
  id: 'jupyter-sm-debug:files',
  description:
    "A training host's files in JupyterLab's file browser and editors.",
  autoStart: true,
  provides: IHostFiles,
  requires: [ITranslator, IDocumentManager, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator,
    docManager: IDocumentManager,
    factory: IFileBrowserFactory
  ): IHostFiles => {
    let storage: Storage | null = null;
    try {
      storage = window.localStorage;
    } catch {
      // Refused (e.g. by the browser's settings): nothing is remembered.
    }
    const files = new HostFiles({
      app,
      docManager,
      factory,
      storage,
      translator
    });
    // Now, before the layout restorer reopens the hosts' documents and tabs.
    files.restoreDrives();

    // JupyterLab's Copy Path copies `sm-debug.<job>.<host>:opt/ml/…`; this one
    // copies the path a shell in the container knows.
    const trans = translator.load('jupyter_sm_debug');
    app.commands.addCommand(COPY_CONTAINER_PATH, {
      label: trans.__('Copy Path in the Container'),
      caption: trans.__('Copy the path of the file as the container sees it'),
      describedBy: { args: { type: 'object', properties: {} } },
      isVisible: () => files.selectedContainerPath() !== null,
      execute: () => {
        const path = files.selectedContainerPath();
        if (path !== null) {
          Clipboard.copyToSystem(path);
        }
        return path;
      }
    });
    app.contextMenu.addItem({
      command: COPY_CONTAINER_PATH,
      selector: '.jp-SMDebug-filesBrowser .jp-DirListing-item[data-isdir]',
      rank: 14
    });
    return files;
  }
};
