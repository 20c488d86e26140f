import { SMDebugError } from './request';

/**
 * Where one action on one job stands: in flight (with what was asked), refused
 * (with the server's reason), or done (with the server's answer).
 */
export interface IActionState<A, T> {
  /** What was asked for while the request is in flight; null otherwise. */
  pending: A | null;
  /** Why the last request failed; null once dismissed or after a success. */
  error: SMDebugError | null;
  /** The answer of the last request that succeeded. */
  result: T | null;
}

/**
 * The pending/error state machine of one kind of action (stop, remote debug,
 * debug copy...), one state per job. Not optimistic: a request runs at most
 * once at a time per job, its answer or refusal is kept for the view, and
 * every change is announced through `changed`.
 */
export class ActionStates<A, T> {
  /**
   * @param changed called after every change of any state
   */
  constructor(changed: () => void) {
    this._changed = changed;
  }

  /**
   * The state of the action for `key` (idle when it never ran).
   */
  get(key: string): IActionState<A, T> {
    return (
      this._states.get(key) ?? { pending: null, error: null, result: null }
    );
  }

  /**
   * Whether a request for `key` is in flight.
   */
  isPending(key: string): boolean {
    return this.get(key).pending !== null;
  }

  /**
   * Run `request` for `key`, asking for `asked`. Refused (null) while one is
   * in flight for the same key.
   *
   * @returns the answer, or null when the request failed or was refused
   */
  async run(
    key: string,
    asked: A,
    request: () => Promise<T>
  ): Promise<T | null> {
    if (this.isPending(key)) {
      return null;
    }
    this._set(key, { pending: asked, error: null, result: null });
    try {
      const result = await request();
      this._set(key, { pending: null, error: null, result });
      return result;
    } catch (reason) {
      this._set(key, {
        pending: null,
        error: SMDebugError.from(reason),
        result: null
      });
      return null;
    }
  }

  /**
   * Forget a refusal (the user dismissed the message); the result stays.
   */
  clearError(key: string): void {
    const state = this._states.get(key);
    if (state?.error) {
      this._set(key, { ...state, error: null });
    }
  }

  private _set(key: string, state: IActionState<A, T>): void {
    this._states.set(key, state);
    this._changed();
  }

  private _changed: () => void;
  private _states = new Map<string, IActionState<A, T>>();
}
