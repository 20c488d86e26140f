import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry, IDocumentWidget } from '@jupyterlab/docregistry';
import {
  FileBrowser,
  FilterFileBrowserModel,
  IFileBrowserFactory
} from '@jupyterlab/filebrowser';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { isTransport, Transport } from '../types';
import { FilesError, HostDrive, IRefused } from './drive';
import { driveOfPath, parseDriveName } from './names';
import { RefusedFileTab } from './notice';
import { HostFilesTab } from './tab';

/**
 * The document factories a host's file may open in: the text editor and
 * viewers that never run the file's content on the Jupyter origin (images
 * in <img>, SVG included; tables, JSON trees, Markdown sanitized as
 * untrusted). Every other factory (the HTML viewer, whose "Trust HTML" runs
 * scripts with the page's origin; the notebook, whose cells a file can mark
 * trusted; PDF, Vega and other extensions' viewers) is closed at once and the
 * file opened in the Editor instead (docs/files.md).
 */
export const SAFE_FACTORIES: ReadonlySet<string> = new Set([
  'Editor',
  'Image',
  'Image (Text)',
  'CSVTable',
  'TSVTable',
  'JSON',
  'JSONLines',
  'Markdown Preview'
]);

/** The factory for anything not in SAFE_FACTORIES. */
export const TEXT_FACTORY = 'Editor';

/**
 * Where the hosts whose drives a page had are kept (localStorage: read at
 * once when the plugin starts, before the layout restorer reopens their
 * documents; IStateDB is only readable after every plugin has started).
 */
const STATE_KEY = 'jupyter-sm-debug:files-drives';
/** At most this many hosts are remembered. */
const MAX_REMEMBERED = 20;

/**
 * A host's files in JupyterLab: one drive per host, file browser tabs on
 * them, documents opened safely.
 */
export interface IHostFiles {
  /** The drive of a host, made and registered on first use. */
  drive(job: string, host: string, transport?: Transport | null): HostDrive;
  /** A new file browser tab on a host (TabManager shows and restores it). */
  createTab(job: string, host: string, transport: Transport): HostFilesTab;
  /** The id of a host's files tab. */
  idFor(job: string, host: string): string;
  /** Open a file of a host's drive (a global `drive:path`) safely. */
  openFile(path: string): Promise<Widget | undefined>;
}

export const IHostFiles = new Token<IHostFiles>(
  'jupyter-sm-debug:IHostFiles',
  "A training host's files as a JupyterLab drive."
);

/**
 * The drives, the browsers on them and the guard on their documents.
 */
export class HostFiles implements IHostFiles, IDisposable {
  constructor(options: HostFiles.IOptions) {
    this._app = options.app;
    this._docManager = options.docManager;
    this._factory = options.factory;
    this._storage = options.storage;
    this._storageKey = `${STATE_KEY}:${options.app.serviceManager.serverSettings.baseUrl}`;
    this._translator = options.translator;
    this._trans = options.translator.load('jupyter_sm_debug');
    this._guardFactories();
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._docManager.registry.changed.disconnect(this._onRegistryChanged, this);
  }

  /**
   * Register the drives of the hosts a page had, so that its documents and
   * files tabs find them again after a reload (before the layout is
   * restored: the plugin waits for this).
   */
  restoreDrives(): void {
    if (!this._storage) {
      return;
    }
    try {
      const saved = JSON.parse(this._storage.getItem(this._storageKey) ?? '[]');
      if (!Array.isArray(saved)) {
        return;
      }
      for (const item of saved.slice(-MAX_REMEMBERED)) {
        if (!Array.isArray(item)) {
          continue;
        }
        const [job, host, transport] = item as unknown[];
        if (
          typeof job === 'string' &&
          typeof host === 'string' &&
          job &&
          host
        ) {
          this.drive(job, host, isTransport(transport) ? transport : null);
        }
      }
    } catch (reason) {
      console.warn('jupyter-sm-debug: the saved drives were not read', reason);
    }
  }

  drive(job: string, host: string, transport?: Transport | null): HostDrive {
    const drive = new HostDrive({
      job,
      host,
      transport: transport ?? null,
      serverSettings: this._app.serviceManager.serverSettings
    });
    const known = this._drives.get(drive.name);
    if (known) {
      drive.dispose();
      if (transport && known.transport !== transport) {
        known.transport = transport;
        this._save();
      }
      return known;
    }
    this._drives.set(drive.name, drive);
    this._app.serviceManager.contents.addDrive(drive);
    drive.refused.connect((_, refused) => this._showRefused(drive, refused));
    drive.truncated.connect((_, path) => {
      // Once per directory: the listing is read again every 30 s.
      const key = `${drive.name}:${path}`;
      if (this._saidTruncated.has(key)) {
        return;
      }
      this._saidTruncated.add(key);
      Notification.warning(
        this._trans.__(
          '%1 on %2 has more entries than are listed: the list stops at 20,000. Use a terminal for the rest.',
          drive.containerPath(path),
          drive.ref.host
        ),
        { autoClose: 8000 }
      );
    });
    this._save();
    return drive;
  }

  idFor(job: string, host: string): string {
    return HostFilesTab.idFor(job, host);
  }

  createTab(job: string, host: string, transport: Transport): HostFilesTab {
    const drive = this.drive(job, host, transport);
    return new HostFilesTab({
      drive,
      trans: this._trans,
      translator: this._translator,
      createBrowser: () => this._browserFor(drive)
    });
  }

  async openFile(path: string): Promise<Widget | undefined> {
    const drive = this._drives.get(driveOfPath(path));
    if (!drive) {
      return this._docManager.openOrReveal(path);
    }
    const factory = this.factoryFor(path);
    const open = this._docManager.findWidget(path, factory);
    if (open) {
      this._app.shell.activateById(open.id);
      return open;
    }
    const widgetFactory = this._docManager.registry.getWidgetFactory(factory);
    const modelFactory = this._docManager.registry.getModelFactory(
      widgetFactory?.modelName ?? 'text'
    );
    if (modelFactory?.fileFormat) {
      // Loaded once, here: a file too large or not text opens as a notice
      // (drive.refused), nothing else does.
      try {
        await drive.probe(this._app.serviceManager.contents.localPath(path), {
          type: modelFactory.contentType,
          format: modelFactory.fileFormat
        });
      } catch (error) {
        if (!isRefusal(error)) {
          void showErrorMessage(
            this._trans.__('Cannot open %1', path.split('/').pop() ?? path),
            error as Error
          );
        }
        return undefined;
      }
    }
    return this._docManager.openOrReveal(path, factory);
  }

  /**
   * The container path (`/opt/ml/code/train.py`) of the one item selected in
   * the current host browser; null when the current browser is not a host's
   * or not exactly one item is selected.
   */
  selectedContainerPath(): string | null {
    const browser = this._factory.tracker.currentWidget;
    const drive = browser ? this._drives.get(browser.model.driveName) : null;
    if (!browser || !drive) {
      return null;
    }
    const selected = Array.from(browser.selectedItems());
    if (selected.length !== 1) {
      return null;
    }
    return drive.containerPath(
      this._app.serviceManager.contents.localPath(selected[0].path)
    );
  }

  /**
   * The factory a host's file opens in: its default one when that is safe,
   * the Editor otherwise.
   */
  factoryFor(path: string): string {
    const name = this._docManager.registry.defaultWidgetFactory(
      path.split('/').pop() ?? path
    )?.name;
    return name && SAFE_FACTORIES.has(name) ? name : TEXT_FACTORY;
  }

  /**
   * The browser of a drive's tab: the one made ahead for it when the page
   * started, or a new one.
   */
  private _browserFor(drive: HostDrive): FileBrowser {
    const ready = this._browsers.get(drive.name);
    if (ready && !ready.isDisposed && !ready.parent) {
      return ready;
    }
    const browser = this._createBrowser(drive);
    this._browsers.set(drive.name, browser);
    browser.disposed.connect(() => {
      if (this._browsers.get(drive.name) === browser) {
        this._browsers.delete(drive.name);
      }
    });
    return browser;
  }

  private _createBrowser(drive: HostDrive): FileBrowser {
    const model = new FilterFileBrowserModel({
      manager: this._docManager,
      driveName: drive.name,
      translator: this._translator,
      // Not before the tab asks for /opt/ml: one listing, not two.
      auto: false,
      refreshInterval: 30 * 1000,
      refreshStandby: 'when-hidden'
    });
    const browser = new FileBrowser({
      id: `${HostFilesTab.idFor(drive.ref.job, drive.ref.host)}-browser`,
      model,
      translator: this._translator,
      handleOpenFile: path => void this.openFile(path)
    });
    // JupyterLab's file browser commands (context menu, Download, Copy
    // Path...) act on the tracker's current browser.
    void this._factory.tracker.add(browser);
    return browser;
  }

  private _showRefused(drive: HostDrive, refused: IRefused): void {
    const id = RefusedFileTab.idFor(drive, refused.path);
    const shown = Array.from(this._app.shell.widgets('main')).find(
      widget => widget.id === id
    );
    if (!shown) {
      this._app.shell.add(
        new RefusedFileTab({ drive, refused, trans: this._trans }),
        'main'
      );
    }
    this._app.shell.activateById(id);
  }

  /**
   * Watch every document factory, now and later: a host's file in an unsafe
   * one is closed before it loads and opened in the Editor; in a safe one its
   * tab says which host it is on.
   */
  private _guardFactories(): void {
    const registry = this._docManager.registry;
    for (const factory of registry.widgetFactories()) {
      this._guard(factory.name);
    }
    registry.changed.connect(this._onRegistryChanged, this);
  }

  private _onRegistryChanged(
    _: DocumentRegistry,
    args: DocumentRegistry.IChangedArgs
  ): void {
    if (args.type === 'widgetFactory' && args.change === 'added' && args.name) {
      this._guard(args.name);
    }
  }

  private _guard(factoryName: string): void {
    const key = factoryName.toLowerCase();
    if (this._guarded.has(key)) {
      return;
    }
    this._guarded.add(key);
    const safe = SAFE_FACTORIES.has(factoryName);
    this._docManager.registry.addWidgetExtension(factoryName, {
      createNew: (widget: IDocumentWidget, context) => {
        const ref = parseDriveName(driveOfPath(context.path));
        if (!ref || !this._drives.has(driveOfPath(context.path))) {
          return;
        }
        if (!safe) {
          this._replace(widget, context.path, factoryName);
          return;
        }
        labelTab(widget, ref.host, ref.job, context, this._trans);
      }
    });
  }

  /**
   * Close a host's file opened in an unsafe factory before its content
   * arrives (a microtask: the load is a network round trip away), and open
   * it in the Editor.
   */
  private _replace(widget: Widget, path: string, factoryName: string): void {
    widget.hide();
    queueMicrotask(() => {
      widget.dispose();
      Notification.info(
        this._trans.__(
          '%1 opens as text: files from a container are not shown in the %2, which could run their content in this page.',
          path.split('/').pop() ?? path,
          factoryName
        ),
        { autoClose: 8000 }
      );
      void this.openFile(path);
    });
  }

  private _save(): void {
    const saved = Array.from(this._drives.values())
      .slice(-MAX_REMEMBERED)
      .map(drive => [drive.ref.job, drive.ref.host, drive.transport ?? '']);
    try {
      this._storage?.setItem(this._storageKey, JSON.stringify(saved));
    } catch {
      // Storage full or refused: the tabs are not restored after a reload.
    }
  }

  private _app: JupyterFrontEnd;
  private _docManager: IDocumentManager;
  private _factory: IFileBrowserFactory;
  private _storage: Storage | null;
  private _storageKey: string;
  private _translator: ITranslator;
  private _trans: TranslationBundle;
  private _drives = new Map<string, HostDrive>();
  private _browsers = new Map<string, FileBrowser>();
  private _saidTruncated = new Set<string>();
  private _guarded = new Set<string>();
  private _isDisposed = false;
}

export namespace HostFiles {
  export interface IOptions {
    app: JupyterFrontEnd;
    docManager: IDocumentManager;
    factory: IFileBrowserFactory;
    /** Where the drives are remembered across reloads; null: nowhere. */
    storage: Storage | null;
    translator: ITranslator;
  }
}

/**
 * Whether an error is a refusal the drive already shows as a notice.
 */
function isRefusal(error: unknown): boolean {
  return (
    error instanceof FilesError &&
    ['file_too_large', 'not_text', 'binary_file'].includes(error.code)
  );
}

/**
 * A document tab of a host's file says the host: a badge after the name
 * (CSS, from the tab's `data-sm-debug-host`) and a first line in its tooltip
 * with host, job and path (JupyterLab writes the rest of the tooltip, and
 * again on every save). The label itself is left alone: a DocumentWidget
 * renames its file when its label changes.
 */
function labelTab(
  widget: Widget,
  host: string,
  job: string,
  context: DocumentRegistry.Context,
  trans: TranslationBundle
): void {
  const title = widget.title;
  const first = () => trans.__('%1 · %2: /%3', host, job, context.localPath);
  const update = () => {
    const line = first();
    if (!title.caption.startsWith(`${line}\n`) && title.caption !== line) {
      const rest = title.caption.startsWith(`${host} · ${job}: `)
        ? title.caption.split('\n').slice(1).join('\n')
        : title.caption;
      title.caption = rest ? `${line}\n${rest}` : line;
    }
  };
  title.className = `${title.className} jp-SMDebug-hostDoc`.trim();
  title.dataset = { ...title.dataset, 'sm-debug-host': host };
  update();
  title.changed.connect(update);
  context.pathChanged.connect(update);
}
