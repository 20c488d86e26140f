import { PathExt } from '@jupyterlab/coreutils';
import { FileBrowser, Uploader } from '@jupyterlab/filebrowser';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  folderIcon,
  newFolderIcon,
  refreshIcon,
  textEditorIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';
import { Panel } from '@lumino/widgets';

import type { ISMDebugTab } from '../tabs';
import { Transport } from '../types';
import { HostDrive } from './drive';
import { driveName } from './names';

/**
 * Where a host's file browser starts.
 */
export const START_DIR = '/opt/ml';

/**
 * A main-area tab with JupyterLab's own file browser on a host's drive:
 * `algo-1 · <job>`, starting in /opt/ml, with New Folder, New File, Upload and
 * Refresh in its toolbar; the file browser's context menu (Open, Open With,
 * Rename, Delete, Cut, Copy, Paste, Duplicate, Download, Copy Path) works on
 * it as on JupyterLab's own browser.
 */
export class HostFilesTab extends Panel implements ISMDebugTab {
  constructor(options: HostFilesTab.IOptions) {
    super();
    const { drive, trans } = options;
    this._drive = drive;
    this._trans = trans;
    this.addClass('jp-SMDebug-files');
    this.title.label = trans.__('%1 · %2', drive.ref.host, drive.ref.job);
    this.title.icon = folderIcon;
    this.title.closable = true;
    this.node.dataset.drive = drive.name;
    this._setCaption();

    const browser = options.createBrowser();
    browser.addClass('jp-SMDebug-filesBrowser');
    this.browser = browser;
    const toolbar = browser.toolbar;
    toolbar.addItem(
      'new-folder',
      new ToolbarButton({
        icon: newFolderIcon,
        tooltip: trans.__('New Folder'),
        onClick: () => void browser.createNewDirectory()
      })
    );
    toolbar.addItem(
      'new-file',
      new ToolbarButton({
        // An icon: the browser's toolbar buttons are 40 px wide.
        icon: textEditorIcon,
        tooltip: trans.__('New Text File'),
        onClick: () => void browser.createNewFile({ ext: '.txt' })
      })
    );
    toolbar.addItem(
      'upload',
      new Uploader({ model: browser.model, translator: options.translator })
    );
    toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh the listing of %1', drive.ref.host),
        onClick: () => void browser.model.refresh()
      })
    );
    this.addWidget(browser);
    // JupyterLab's browser model compares a change's global path, prefixed
    // once more with the drive's name, to its own: on any drive but the
    // default one it never matches, and a save, upload, rename or delete
    // would not show. The drive's own signal has local paths.
    drive.fileChanged.connect(this._onFileChanged, this);
    void this.cdStart();
  }

  /** The file browser on the host's drive. */
  readonly browser: FileBrowser;

  get restoreArgs(): ReadonlyPartialJSONObject {
    const { job, host } = this._drive.ref;
    return this._drive.transport
      ? { job, host, transport: this._drive.transport }
      : { job, host };
  }

  get restoreArgsChanged(): ISignal<this, void> {
    return this._restoreArgsChanged;
  }

  /**
   * Reach the host over another transport from now on (the Files action's
   * own, when it is pressed again).
   */
  setTransport(transport: Transport): void {
    if (this._drive.transport !== transport) {
      this._drive.transport = transport;
      this._setCaption();
      this._restoreArgsChanged.emit();
      void this.browser.model.refresh();
    }
  }

  /**
   * Go to /opt/ml; to / when the host has none.
   */
  async cdStart(): Promise<void> {
    try {
      await this.browser.model.cd(START_DIR);
    } catch {
      await this.browser.model.cd('/').catch(() => undefined);
    }
  }

  /**
   * The id of the files tab of a host.
   */
  static idFor(job: string, host: string): string {
    return `jp-SMDebug-files-${driveName(job, host).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._drive.fileChanged.disconnect(this._onFileChanged, this);
    this.browser.dispose();
    super.dispose();
  }

  private _onFileChanged(_: HostDrive, change: Contents.IChangedArgs): void {
    const here = this.browser.model.manager.services.contents.localPath(
      this.browser.model.path
    );
    const touched = [change.oldValue?.path, change.newValue?.path].some(
      path => typeof path === 'string' && PathExt.dirname(path) === here
    );
    if (touched && !this.isDisposed) {
      void this.browser.model.refresh();
    }
  }

  private _setCaption(): void {
    const { job, host } = this._drive.ref;
    this.title.caption = this._drive.transport
      ? this._trans.__(
          'Files of %1 of %2 over %3',
          host,
          job,
          this._drive.transport.toUpperCase()
        )
      : this._trans.__('Files of %1 of %2', host, job);
  }

  private _drive: HostDrive;
  private _trans: TranslationBundle;
  private _restoreArgsChanged = new Signal<this, void>(this);
}

export namespace HostFilesTab {
  export interface IOptions {
    drive: HostDrive;
    trans: TranslationBundle;
    translator: import('@jupyterlab/translation').ITranslator;
    /** JupyterLab's file browser on the drive, tracked by JupyterLab. */
    createBrowser: () => FileBrowser;
  }
}
