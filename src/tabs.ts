import { JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/**
 * A main-area tab of the extension: it says which command, with which
 * arguments, opens it again after a page reload. The command re-creates the
 * tab through the REST API (a new stacks dump, a fresh forward...): nothing
 * is reopened by a name the server may have forgotten.
 */
export interface ISMDebugTab extends Widget {
  readonly restoreArgs: ReadonlyPartialJSONObject;
  /** Emitted when `restoreArgs` change (they are saved again). */
  readonly restoreArgsChanged?: ISignal<unknown, void>;
}

/**
 * The kinds of tab, each with its own tracker (and restore command).
 */
export type TabKind = 'logs' | 'stacks' | 'state' | 'run' | 'forward' | 'files';

/**
 * The one place that opens, finds again and restores the extension's
 * main-area tabs: a second open of the same tab shows (and refreshes) the one
 * already there.
 */
export class TabManager {
  constructor(options: TabManager.IOptions) {
    this._shell = options.shell;
    this._restorer = options.restorer;
  }

  /**
   * Declare a kind of tab and the command that opens one; the restorer calls
   * that command with each tab's `restoreArgs` after a reload.
   */
  addKind(kind: TabKind, command: string): void {
    const tracker = new WidgetTracker<ISMDebugTab>({
      namespace: `sm-debug-${kind}`
    });
    this._trackers.set(kind, tracker);
    if (this._restorer) {
      void this._restorer.restore(tracker, {
        command,
        args: tab => tab.restoreArgs,
        name: tab => tab.id
      });
    }
  }

  /**
   * The open tab with `id`, if any.
   */
  find<T extends ISMDebugTab>(kind: TabKind, id: string): T | undefined {
    return this._tracker(kind).find(tab => tab.id === id) as T | undefined;
  }

  /**
   * Show the tab `id`: the open one (after `refresh`), or a new one from
   * `create`, added to the main area and tracked for the restorer.
   */
  async open<T extends ISMDebugTab>(
    kind: TabKind,
    id: string,
    create: () => T,
    refresh?: (tab: T) => void
  ): Promise<T> {
    let tab = this.find<T>(kind, id);
    if (tab) {
      refresh?.(tab);
    } else {
      const created = create();
      created.id = id;
      this._shell.add(created, 'main');
      const tracker = this._tracker(kind);
      await tracker.add(created);
      created.restoreArgsChanged?.connect(() => void tracker.save(created));
      tab = created;
    }
    this._shell.activateById(id);
    return tab;
  }

  private _tracker(kind: TabKind): WidgetTracker<ISMDebugTab> {
    let tracker = this._trackers.get(kind);
    if (!tracker) {
      // A kind nobody declared: tracked, but not restored.
      tracker = new WidgetTracker<ISMDebugTab>({
        namespace: `sm-debug-${kind}`
      });
      this._trackers.set(kind, tracker);
    }
    return tracker;
  }

  private _shell: Pick<JupyterFrontEnd.IShell, 'add' | 'activateById'>;
  private _restorer: TabManager.IRestorer | null;
  private _trackers = new Map<TabKind, WidgetTracker<ISMDebugTab>>();
}

export namespace TabManager {
  export interface IOptions {
    /** Where tabs go: the application shell. */
    shell: Pick<JupyterFrontEnd.IShell, 'add' | 'activateById'>;
    /** Restores the tabs after a reload (the layout restorer); null when there is none. */
    restorer: TabManager.IRestorer | null;
  }

  /**
   * What the tab manager needs of JupyterLab's layout restorer.
   */
  export interface IRestorer {
    restore(
      tracker: WidgetTracker<ISMDebugTab>,
      options: {
        command: string;
        args: (tab: ISMDebugTab) => ReadonlyPartialJSONObject;
        name: (tab: ISMDebugTab) => string;
      }
    ): Promise<unknown>;
  }
}
