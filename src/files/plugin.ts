import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ITranslator } from '@jupyterlab/translation';

import { HostFiles, IHostFiles } from './service';

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
    return files;
  }
};
