import { ISignal, Signal } from '@lumino/signaling';

import { SMDebugError } from './request';

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
        this._error =
          reason instanceof SMDebugError
            ? reason
            : new SMDebugError({
                status: 0,
                code: 'unexpected',
                message: String(reason)
              });
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
