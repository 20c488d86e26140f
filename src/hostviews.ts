import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ISMDebugAPI } from './api';
import { transportLabel } from './labels';
import { SMDebugError } from './request';
import { ISMDebugTab } from './tabs';
import { Transport } from './types';

/**
 * The state of one request shown in a main-area tab: nothing yet, waiting,
 * answered, or failed. The widgets only render it.
 */
export class RequestModel<T> {
  constructor(factory: () => Promise<T>) {
    this._factory = factory;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get pending(): boolean {
    return this._pending;
  }

  get result(): T | null {
    return this._result;
  }

  get error(): SMDebugError | null {
    return this._error;
  }

  /**
   * Ask again; an answer to an older request that arrives late is dropped.
   */
  async load(factory?: () => Promise<T>): Promise<void> {
    if (factory) {
      this._factory = factory;
    }
    const ticket = ++this._ticket;
    this._pending = true;
    this._error = null;
    this._changed.emit();
    try {
      const result = await this._factory();
      if (ticket === this._ticket) {
        this._result = result;
      }
    } catch (reason) {
      if (ticket === this._ticket) {
        this._error = SMDebugError.from(reason);
      }
    } finally {
      if (ticket === this._ticket) {
        this._pending = false;
        this._changed.emit();
      }
    }
  }

  private _factory: () => Promise<T>;
  private _ticket = 0;
  private _pending = false;
  private _result: T | null = null;
  private _error: SMDebugError | null = null;
  private _changed = new Signal<this, void>(this);
}

/**
 * A main-area tab that looks inside the hosts of a job over one transport:
 * titled "<what> · <job> · <transport>" so that tabs over SSH and SSM differ.
 */
export abstract class HostView extends ReactWidget implements ISMDebugTab {
  constructor(options: HostView.IOptions, what: string, caption: string) {
    super();
    const { job, transport, trans } = options;
    this.job = job;
    this.transport = transport;
    this.trans = trans;
    this.title.label = `${what} · ${job} · ${transportLabel(trans, transport)}`;
    this.title.caption = caption;
    this.title.closable = true;
    this.addClass('jp-SMDebug-hostView');
  }

  readonly job: string;
  readonly transport: Transport;

  /**
   * The arguments of the command that opens this tab again after a reload.
   */
  abstract get restoreArgs(): ReadonlyPartialJSONObject;

  protected readonly trans: TranslationBundle;
}

export namespace HostView {
  export interface IOptions {
    api: ISMDebugAPI;
    job: string;
    transport: Transport;
    trans: TranslationBundle;
  }
}

/**
 * The id of a host view's tab: one per kind, job, transport (and hosts).
 */
export function hostViewId(
  kind: string,
  job: string,
  transport: Transport,
  hosts?: readonly string[]
): string {
  const which = hosts?.length ? `-${hosts.join('-')}` : '';
  return `jp-SMDebug-${kind}-${job}-${transport}${which}`;
}
