import { Terminal as TerminalNS } from '@jupyterlab/services';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ISMDebugAPI } from './api';
import { transportLabel } from './labels';
import { SMDebugError } from './request';
import { Transport } from './types';

/**
 * A terminal tab as JupyterLab's `terminal:open` returns it: a main-area widget
 * whose content holds the terminal session.
 */
export interface ITerminalTab extends Widget {
  content: Widget & { session: TerminalNS.ITerminalConnection };
}

/**
 * Where a host's session stands, as the panel shows it.
 */
export type SessionStatus = 'attaching' | 'open' | 'ended' | 'failed';

/**
 * One attach: a host of a job over a transport, and its terminal tab.
 */
export interface IAttachSession {
  readonly key: string;
  readonly job: string;
  readonly host: string;
  readonly transport: Transport;
  status: SessionStatus;
  /** The server terminal's name, once the server gave one. */
  terminalName: string | null;
  /** The target the server connected to (SSM target id or SSH address). */
  target: string | null;
  tab: ITerminalTab | null;
  error: SMDebugError | null;
}

/**
 * What a terminal name of ours stands for.
 */
export interface ITerminalTarget {
  job: string;
  host: string;
  transport: Transport;
}

/**
 * The job, host and transport of a terminal the server named for an attach,
 * `smdebug_<job>__<host>__<transport>` with each '-' as '_' (job names never
 * hold '_'); null for any other terminal.
 */
export function parseTerminalName(name: string): ITerminalTarget | null {
  const match = /^smdebug_(\w+)__(algo_[1-9]\d*)__(ssm|ssh)$/.exec(name);
  if (!match) {
    return null;
  }
  return {
    job: match[1].replace(/_/g, '-'),
    host: match[2].replace('_', '-'),
    transport: match[3] as Transport
  };
}

/**
 * What became of the terminal tabs restored with the page.
 */
export interface IRestoreResult {
  /** Sessions still running on the server: their tabs are ours again. */
  adopted: IAttachSession[];
  /** Sessions whose tab was closed: gone, or not known to be running. */
  closed: IAttachSession[];
}

/**
 * Opens JupyterLab terminal tabs on training hosts and keeps track of them.
 *
 * Each attach asks the server for a terminal first (the server creates it or
 * returns the live one) and only then opens the name it returned: opening a name
 * the server did not just confirm would silently start a local shell under it.
 * A second attach to a host whose tab is still connected just focuses the tab.
 */
export class AttachManager implements IDisposable {
  constructor(options: AttachManager.IOptions) {
    this._api = options.api;
    this._open = options.openTerminal;
    this._activate = options.activate;
    this._findTab = options.findTab ?? (() => undefined);
    this._trans = (options.translator ?? nullTranslator).load(
      'jupyter_sm_debug'
    );
  }

  /**
   * Emitted when any session changes status.
   */
  get changed(): ISignal<this, IAttachSession> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * The session for a host and transport, if there was an attach.
   */
  session(
    job: string,
    host: string,
    transport: Transport
  ): IAttachSession | undefined {
    return this._sessions.get(AttachManager.key(job, host, transport));
  }

  /**
   * All sessions of a host, whatever the transport.
   */
  sessionsOf(job: string, host: string): IAttachSession[] {
    return [...this._sessions.values()].filter(
      session => session.job === job && session.host === host
    );
  }

  /**
   * Open (or focus) a terminal tab with a shell on `host` of `job`.
   *
   * @returns the session; its `status` is 'failed' with `error` set when the
   * server refused or the tab could not open.
   */
  attach(
    job: string,
    host: string,
    transport: Transport
  ): Promise<IAttachSession> {
    const key = AttachManager.key(job, host, transport);
    const inFlight = this._pending.get(key);
    if (inFlight) {
      return inFlight; // a double click attaches once
    }
    const existing = this._sessions.get(key);
    if (existing && existing.status === 'open' && isLive(existing.tab)) {
      this._activate(existing.tab!.id);
      return Promise.resolve(existing);
    }
    const attempt = this._attach(job, host, transport).finally(() => {
      this._pending.delete(key);
    });
    this._pending.set(key, attempt);
    return attempt;
  }

  /**
   * Take over the terminal tabs of ours that JupyterLab restored with the page.
   *
   * JupyterLab reopens a restored terminal tab by name and, when the server no
   * longer has that name, starts a plain local shell under it: such a tab must
   * never pass for a container session. `running` holds the server's terminal
   * names from before the restore (null when they could not be listed):
   *
   * - running then: the session survived the reload; the tab is tracked,
   *   titled and shown as attached again;
   * - gone then: the tab now holds a local shell, which is shut down; the tab
   *   is closed and the session shown as ended;
   * - unknown: the tab is closed but its terminal left alone (it may be the
   *   real session, which Attach reconnects to).
   */
  async adoptRestored(
    tabs: Iterable<ITerminalTab>,
    running: ReadonlySet<string> | null
  ): Promise<IRestoreResult> {
    const result: IRestoreResult = { adopted: [], closed: [] };
    const closing: Promise<void>[] = [];
    for (const tab of tabs) {
      if (tab.isDisposed || this._tracked.has(tab)) {
        continue;
      }
      const name = tab.content.session.name;
      const target = parseTerminalName(name);
      if (!target) {
        continue;
      }
      const { job, host, transport } = target;
      const key = AttachManager.key(job, host, transport);
      if (this._pending.has(key)) {
        continue; // an attach to this host is under way and handles its tab
      }
      const session: IAttachSession = this._sessions.get(key) ?? {
        key,
        job,
        host,
        transport,
        status: 'ended',
        terminalName: name,
        target: null,
        tab: null,
        error: null
      };
      session.terminalName = name;
      session.error = null;
      this._sessions.set(key, session);

      if (running?.has(name)) {
        session.status = isEnded(tab) ? 'ended' : 'open';
        this._track(session, tab);
        result.adopted.push(session);
      } else {
        session.status = 'ended';
        if (session.tab === tab) {
          session.tab = null;
        }
        closing.push(this._close(tab, running !== null));
        result.closed.push(session);
      }
      this._changed.emit(session);
    }
    await Promise.all(closing);
    return result;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  /**
   * Close a tab, first shutting down its terminal when it is known to be a
   * local shell that JupyterLab started under our name.
   */
  private async _close(tab: ITerminalTab, shutDown: boolean): Promise<void> {
    if (shutDown) {
      try {
        await tab.content.session.shutdown();
      } catch (reason) {
        console.warn(
          `jupyter-sm-debug: could not shut down the local shell ${tab.content.session.name}`,
          reason
        );
      }
    }
    if (!tab.isDisposed) {
      tab.dispose();
    }
  }

  private async _attach(
    job: string,
    host: string,
    transport: Transport
  ): Promise<IAttachSession> {
    const key = AttachManager.key(job, host, transport);
    const session: IAttachSession = this._sessions.get(key) ?? {
      key,
      job,
      host,
      transport,
      status: 'attaching',
      terminalName: null,
      target: null,
      tab: null,
      error: null
    };
    session.status = 'attaching';
    session.error = null;
    this._sessions.set(key, session);
    this._changed.emit(session);

    try {
      const answer = await this._api.createTerminal(job, host, transport);
      const name = answer.terminal.name;
      // A tab still showing this name's ended session would be focused instead
      // of connected: close it first. Ours, or one the layout restorer made.
      for (const stale of [session.tab, this._findTab(name)]) {
        if (stale && !stale.isDisposed && !isLive(stale)) {
          stale.dispose();
        }
      }
      session.tab = null;
      session.terminalName = name;
      session.target = answer.target;
      const tab = await this._open(name);
      this._track(session, tab);
      session.status = isEnded(tab) ? 'ended' : 'open';
    } catch (reason) {
      session.status = 'failed';
      session.error = SMDebugError.from(reason);
    }
    this._changed.emit(session);
    return session;
  }

  /**
   * Name the tab after the host and job, and notice when its session ends.
   */
  private _track(session: IAttachSession, tab: ITerminalTab): void {
    if (this._tracked.has(tab)) {
      session.tab = tab;
      this._retitle(session, tab);
      return;
    }
    this._tracked.add(tab);
    session.tab = tab;
    tab.addClass('jp-SMDebug-terminalTab');
    const content = tab.content;
    const terminal = content.session;

    const onTitle = () => this._retitle(session, tab);
    const onEnded = () => {
      if (session.tab !== tab || session.status === 'ended') {
        return;
      }
      session.status = 'ended';
      this._retitle(session, tab);
      this._changed.emit(session);
    };
    const onStatus = (
      _: TerminalNS.ITerminalConnection,
      status: TerminalNS.ConnectionStatus
    ) => {
      if (status === 'disconnected') {
        onEnded();
      }
    };
    content.title.changed.connect(onTitle, this);
    terminal.disposed.connect(onEnded, this);
    terminal.connectionStatusChanged.connect(onStatus, this);
    tab.disposed.connect(() => {
      this._tracked.delete(tab);
      content.title.changed.disconnect(onTitle, this);
      terminal.disposed.disconnect(onEnded, this);
      terminal.connectionStatusChanged.disconnect(onStatus, this);
      if (session.tab === tab) {
        session.tab = null;
        if (session.status === 'open') {
          session.status = 'ended';
        }
        this._changed.emit(session);
      }
    }, this);
    this._retitle(session, tab);
  }

  /**
   * Keep the tab's title ours: JupyterLab's terminal renames it on connect and
   * on every title escape sequence the remote shell prints.
   */
  private _retitle(session: IAttachSession, tab: ITerminalTab): void {
    const title = tab.content.title;
    // The transport is in the title: tabs over SSH and SSM to one host differ.
    const over = transportLabel(this._trans, session.transport);
    const label =
      session.status === 'ended'
        ? this._trans.__(
            '%1 · %2 · %3 (ended)',
            session.host,
            session.job,
            over
          )
        : this._trans.__('%1 · %2 · %3', session.host, session.job, over);
    const caption =
      session.status === 'ended'
        ? this._trans.__(
            'The session on %1 of %2 ended. Attach again from the SageMaker Debug panel.',
            session.host,
            session.job
          )
        : session.target
          ? this._trans.__(
              '%1 of %2 over %3 (%4)',
              session.host,
              session.job,
              over,
              session.target
            )
          : this._trans.__('%1 of %2 over %3', session.host, session.job, over);
    if (title.label !== label) {
      title.label = label;
    }
    if (title.caption !== caption) {
      title.caption = caption;
    }
  }

  private _api: ISMDebugAPI;
  private _open: (name: string) => Promise<ITerminalTab>;
  private _activate: (id: string) => void;
  private _findTab: (name: string) => ITerminalTab | undefined;
  private _trans: ReturnType<ITranslator['load']>;
  private _sessions = new Map<string, IAttachSession>();
  private _pending = new Map<string, Promise<IAttachSession>>();
  private _tracked = new Set<ITerminalTab>();
  private _changed = new Signal<this, IAttachSession>(this);
  private _isDisposed = false;
}

export namespace AttachManager {
  export interface IOptions {
    api: ISMDebugAPI;
    /** Open the server terminal `name` in a tab: `terminal:open {name}`. */
    openTerminal: (name: string) => Promise<ITerminalTab>;
    /** Focus a main-area widget. */
    activate: (id: string) => void;
    /** A terminal tab already open on `name`, tracked by JupyterLab. */
    findTab?: (name: string) => ITerminalTab | undefined;
    translator?: ITranslator;
  }

  export function key(job: string, host: string, transport: Transport): string {
    return `${job}/${host}/${transport}`;
  }
}

/**
 * Whether a tab's terminal session has ended (the process exited or the
 * terminal was deleted on the server).
 */
function isEnded(tab: ITerminalTab): boolean {
  const session = tab.content.session;
  return session.isDisposed || session.connectionStatus === 'disconnected';
}

function isLive(tab: ITerminalTab | null | undefined): boolean {
  return !!tab && !tab.isDisposed && !isEnded(tab);
}
