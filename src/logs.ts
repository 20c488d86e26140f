import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ISMDebugAPI } from './api';
import { SMDebugError } from './request';
import { ILogEvent, isFinished, LogStream } from './types';

/**
 * One host's log, followed live: the whole stream from its start, then each
 * new line as CloudWatch gets it, until the job has finished and every line is
 * read. A view only renders it.
 */
export class LogsModel implements IDisposable {
  constructor(options: LogsModel.IOptions) {
    this._api = options.api;
    this.job = options.job;
    this.host = options.host;
    this._stream = options.stream ?? 'training';
    this._pageSize = options.pageSize ?? 1000;
    this._maxLines = options.maxLines ?? 50000;
    this._statusEvery = options.statusEvery ?? 10;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: {
        interval: options.interval ?? 2000,
        backoff: true,
        max: 60 * 1000
      },
      name: 'jupyter-sm-debug:logs',
      standby: 'when-hidden'
    });
  }

  readonly job: string;
  readonly host: string;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** The stream shown: the container's output or the SSM agent's. */
  get stream(): LogStream {
    return this._stream;
  }

  /** Every line read so far (the oldest dropped past `maxLines`). */
  get lines(): readonly ILogEvent[] {
    return this._lines;
  }

  /** Lines dropped from the start to stay within `maxLines`. */
  get dropped(): number {
    return this._dropped;
  }

  /** The CloudWatch stream read; null until the host has one. */
  get streamName(): string | null {
    return this._streamName;
  }

  /** Whether new lines are still looked for (the job has not finished). */
  get following(): boolean {
    return this._following;
  }

  /** Whether the first read has answered. */
  get loaded(): boolean {
    return this._loaded;
  }

  get error(): SMDebugError | null {
    return this._error;
  }

  /** What the search box holds. */
  get search(): string {
    return this._search;
  }

  set search(text: string) {
    if (text !== this._search) {
      this._search = text;
      this._emit();
    }
  }

  /** The lines that hold the search text (every line when there is none). */
  get matches(): readonly ILogEvent[] {
    const needle = this._search.toLowerCase();
    if (!needle) {
      return this._lines;
    }
    return this._lines.filter(line =>
      line.message.toLowerCase().includes(needle)
    );
  }

  /**
   * Start reading (and following).
   */
  start(): void {
    if (!this._started && !this._isDisposed) {
      this._started = true;
      void this._poll.start();
    }
  }

  /**
   * Show the other stream: read it from its start.
   */
  setStream(stream: LogStream): void {
    if (stream === this._stream) {
      return;
    }
    this._stream = stream;
    this._generation++;
    this._lines = [];
    this._dropped = 0;
    this._token = null;
    this._streamName = null;
    this._loaded = false;
    this._error = null;
    this._following = true;
    this._emit();
    if (this._started) {
      void this._poll.refresh();
    } else {
      this.start();
    }
  }

  /**
   * Read what is new now rather than at the next tick.
   */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  /**
   * One tick: read pages until a page comes back empty, then decide whether
   * to go on following (the job still runs). Rejects on failure so that the
   * poll backs off.
   */
  private async _tick(): Promise<void> {
    if (!this._following && this._loaded) {
      return;
    }
    const generation = this._generation;
    let finished = false;
    if (this._ticks++ % this._statusEvery === 0 || !this._loaded) {
      // Before reading: once finished, the read that follows gets every line.
      try {
        finished = isFinished((await this._api.getJob(this.job)).status);
      } catch {
        finished = false; // the log read below says what is wrong
      }
    }
    try {
      for (let pages = 0; pages < 50; pages++) {
        const page = await this._api.hostLogs(
          this.job,
          this.host,
          this._stream,
          this._token,
          this._pageSize
        );
        if (generation !== this._generation || this._isDisposed) {
          return;
        }
        this._streamName = page.stream;
        this._error = null;
        this._loaded = true;
        if (page.events.length > 0) {
          this._append(page.events);
        }
        const moved = page.next_token !== this._token;
        this._token = page.next_token;
        this._emit();
        if (page.events.length === 0 || !moved) {
          break;
        }
      }
    } catch (reason) {
      if (generation === this._generation && !this._isDisposed) {
        this._error = SMDebugError.from(reason);
        this._loaded = true;
        this._emit();
      }
      throw reason;
    }
    if (finished && generation === this._generation) {
      this._following = false;
      this._emit();
    }
  }

  private _append(events: ILogEvent[]): void {
    const lines = this._lines.concat(events);
    const excess = lines.length - this._maxLines;
    if (excess > 0) {
      lines.splice(0, excess);
      this._dropped += excess;
    }
    this._lines = lines;
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _api: ISMDebugAPI;
  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
  private _poll: Poll;
  private _started = false;
  private _stream: LogStream;
  private _pageSize: number;
  private _maxLines: number;
  private _statusEvery: number;
  private _ticks = 0;
  private _generation = 0;
  private _lines: ILogEvent[] = [];
  private _dropped = 0;
  private _token: string | null = null;
  private _streamName: string | null = null;
  private _following = true;
  private _loaded = false;
  private _error: SMDebugError | null = null;
  private _search = '';
}

export namespace LogsModel {
  export interface IOptions {
    api: ISMDebugAPI;
    job: string;
    host: string;
    stream?: LogStream;
    /** Milliseconds between reads while following. Default 2000. */
    interval?: number;
    /** Events per request. Default 1000. */
    pageSize?: number;
    /** Lines kept; older ones are dropped. Default 50000. */
    maxLines?: number;
    /** Ask whether the job finished every this many reads. Default 10. */
    statusEvery?: number;
  }
}
