import { IDisposable } from '@lumino/disposable';
import { Debouncer, IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ISMDebugAPI } from './api';
import { SMDebugError } from './request';
import { IJobSummary, JobStatus } from './types';

/**
 * What `name_contains` accepts (the server rejects anything else with a 400).
 */
export const NAME_FILTER_PATTERN = /^[a-zA-Z0-9-]{0,63}$/;

/**
 * The largest page the server serves.
 */
export const MAX_PAGE_SIZE = 100;

/**
 * The job list of the sidebar: filters, paging, the rows filled in as their
 * descriptions arrive, and a poll that runs only while someone looks.
 * `JobsModel` adds what one job's row opens onto.
 */
export class JobListModel implements IDisposable {
  constructor(options: JobListModel.IOptions) {
    this.api = options.api;
    this._pageSize = Math.min(options.pageSize ?? 20, MAX_PAGE_SIZE);
    this._rowsWanted = this._pageSize;
    this._interval = options.refreshInterval ?? 15;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: JobListModel.frequency(this._interval),
      name: 'jupyter-sm-debug:jobs',
      standby: () => !this._visible || 'when-hidden'
    });
    this._filterDebouncer = new Debouncer(
      () => this.refresh(),
      options.filterDelay ?? 300
    );
  }

  /**
   * The REST client every view and command shares.
   */
  readonly api: ISMDebugAPI;

  /**
   * Emitted whenever anything the view shows changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * The listed jobs, newest first.
   */
  get jobs(): readonly IJobSummary[] {
    return this._jobs;
  }

  /**
   * Whether the server has more jobs after the listed ones.
   */
  get hasMore(): boolean {
    return this._nextToken !== null;
  }

  /**
   * Whether the list is being (re)loaded.
   */
  get loading(): boolean {
    return this._loading;
  }

  get loadingMore(): boolean {
    return this._loadingMore;
  }

  /**
   * Whether the list was loaded at least once (for the current filters).
   */
  get loaded(): boolean {
    return this._loaded;
  }

  /**
   * Why the last list request failed; null once one succeeds.
   */
  get error(): SMDebugError | null {
    return this._error;
  }

  get lastRefreshed(): Date | null {
    return this._lastRefreshed;
  }

  get nameFilter(): string {
    return this._nameFilter;
  }

  /**
   * Whether the name filter is something the server accepts.
   */
  get nameFilterValid(): boolean {
    return NAME_FILTER_PATTERN.test(this._nameFilter);
  }

  get statusFilter(): JobStatus | '' {
    return this._statusFilter;
  }

  /**
   * The automatic refresh interval in seconds; 0 turns it off.
   */
  get refreshInterval(): number {
    return this._interval;
  }
  set refreshInterval(seconds: number) {
    seconds = Math.max(0, Number.isFinite(seconds) ? seconds : 0);
    if (seconds === this._interval) {
      return;
    }
    this._interval = seconds;
    this._poll.frequency = JobListModel.frequency(seconds);
    if (this._started) {
      // Re-arm the next tick with the new interval.
      void this._poll.schedule();
    }
  }

  /**
   * Whether the sidebar is visible. A hidden sidebar does not poll; showing it
   * refreshes at once, and the first showing starts polling.
   */
  get isVisible(): boolean {
    return this._visible;
  }
  set isVisible(visible: boolean) {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (!visible || this._isDisposed) {
      return;
    }
    if (!this._started) {
      this._started = true;
      this.onStart();
      void this._poll.start();
    } else {
      void this._poll.refresh();
    }
  }

  /**
   * The polling state (for tests and diagnostics).
   */
  get poll(): IPoll<void, SMDebugError, 'standby'> {
    return this._poll;
  }

  /**
   * Start polling even if no view said it is visible (commands use this).
   */
  start(): void {
    this.isVisible = true;
  }

  /**
   * Reload the list, keeping as many rows as are loaded. Never rejects:
   * failures land in `error`.
   */
  async refresh(): Promise<void> {
    await this.refreshAll().catch(() => undefined);
  }

  /**
   * Append the next page.
   */
  async loadMore(): Promise<void> {
    if (this._nextToken === null || this._loadingMore || this._isDisposed) {
      return;
    }
    const generation = this._generation;
    this._loadingMore = true;
    this.emit();
    try {
      const page = await this.api.listJobs({
        ...this._query(),
        maxResults: this._pageSize,
        nextToken: this._nextToken
      });
      if (generation !== this._generation) {
        return; // the list was reloaded meanwhile: this page belongs to an old one
      }
      const known = new Set(this._jobs.map(job => job.name));
      this._jobs = [
        ...this._jobs,
        ...page.jobs.filter(job => !known.has(job.name))
      ];
      this._nextToken = page.next_token || null;
      this._rowsWanted = Math.max(this._pageSize, this._jobs.length);
      this._error = null;
    } catch (reason) {
      if (generation === this._generation) {
        this._error = SMDebugError.from(reason);
      }
    } finally {
      this._loadingMore = false;
      this.emit();
    }
    await this._fillRows(generation);
  }

  /**
   * Filter by part of the name; the list reloads once typing pauses.
   */
  setNameFilter(text: string): void {
    text = text.trim();
    if (text === this._nameFilter) {
      return;
    }
    this._nameFilter = text;
    this._resetList();
    if (this.nameFilterValid) {
      void this._filterDebouncer.invoke();
    } else {
      // Nothing will load until the filter is fixed: rows of an earlier filter
      // would be wrong, and "loading" would never end.
      void this._filterDebouncer.stop();
      this._jobs = [];
      this.emit();
    }
  }

  /**
   * Why the list has no rows, for the view to say: still loading, the filter
   * cannot be sent, the list failed (the error says why), nothing matches the
   * filters, or there are no jobs at all. Null while there are rows.
   */
  get emptyReason():
    'loading' | 'invalidFilter' | 'error' | 'noMatch' | 'noJobs' | null {
    if (this._jobs.length > 0) {
      return null;
    }
    if (!this.nameFilterValid) {
      return 'invalidFilter';
    }
    if (this._error) {
      return 'error';
    }
    if (!this._loaded || this._loading) {
      return 'loading';
    }
    return this.filtered ? 'noMatch' : 'noJobs';
  }

  /**
   * Filter by status ('' for all); the list reloads at once.
   */
  setStatusFilter(status: JobStatus | ''): void {
    if (status === this._statusFilter) {
      return;
    }
    this._statusFilter = status;
    this._reloadNow();
  }

  /**
   * Whether any filter is set.
   */
  get filtered(): boolean {
    return this._nameFilter !== '' || this._statusFilter !== '';
  }

  /**
   * Show all jobs again; the list reloads at once.
   */
  clearFilters(): void {
    if (!this.filtered) {
      return;
    }
    this._nameFilter = '';
    this._statusFilter = '';
    this._reloadNow();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    this._filterDebouncer.dispose();
    Signal.clearData(this);
  }

  /**
   * Called once, when the list is first shown (before the first poll).
   */
  protected onStart(): void {
    // Nothing here; `JobsModel` checks the environment.
  }

  /**
   * Everything a poll tick reloads; rejects when the list fails so that the
   * poll backs off.
   */
  protected refreshAll(): Promise<void> {
    return this.loadList();
  }

  /**
   * Bring a job into the list: clear the filters that would hide it, reload,
   * and put it first when the server does not list it yet (listing lags
   * creation on AWS).
   */
  protected async showInList(job: IJobSummary): Promise<void> {
    let filtersChanged = false;
    if (this._statusFilter && this._statusFilter !== job.status) {
      this._statusFilter = '';
      filtersChanged = true;
    }
    if (this._nameFilter && !job.name.includes(this._nameFilter)) {
      this._nameFilter = '';
      filtersChanged = true;
    }
    if (filtersChanged) {
      void this._filterDebouncer.stop();
      this._resetList();
    }
    await this.loadList().catch(() => undefined);
    if (this._isDisposed) {
      return;
    }
    if (!this._jobs.some(summary => summary.name === job.name)) {
      const { name, status, secondary_status, created, instance_count } = job;
      this._jobs = [
        {
          name,
          status,
          secondary_status,
          created,
          started: job.started,
          instance_count,
          remote_debug: job.remote_debug && { ...job.remote_debug },
          described: job.described
        },
        ...this._jobs
      ];
    }
  }

  /**
   * Change a listed job's row (no-op when it is not listed).
   */
  protected updateRow(
    name: string,
    update: (row: IJobSummary) => IJobSummary
  ): void {
    const index = this._jobs.findIndex(summary => summary.name === name);
    if (index >= 0) {
      const jobs = this._jobs.slice();
      jobs[index] = update(jobs[index]);
      this._jobs = jobs;
    }
  }

  /**
   * Load the first pages again (as many rows as are wanted), then describe
   * the rows left undescribed.
   */
  protected async loadList(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    if (!this.nameFilterValid) {
      this._jobs = [];
      this._nextToken = null;
      this.emit();
      return;
    }
    const generation = ++this._generation;
    this._loading = true;
    this.emit();
    try {
      const page = await this.api.listJobs({
        ...this._query(),
        maxResults: Math.min(MAX_PAGE_SIZE, this._rowsWanted)
      });
      if (generation !== this._generation || this._isDisposed) {
        return; // superseded by a newer request
      }
      // The rows show as soon as ListTrainingJobs answers; a row the server has
      // not described keeps what an earlier description said until its own arrives.
      const before = new Map(this._jobs.map(job => [job.name, job]));
      this._jobs = page.jobs.map(job =>
        keepDescribed(job, before.get(job.name))
      );
      this._nextToken = page.next_token || null;
      this._error = null;
      this._loaded = true;
      this._lastRefreshed = new Date();
    } catch (reason) {
      if (generation !== this._generation || this._isDisposed) {
        return;
      }
      this._error = SMDebugError.from(reason);
      throw this._error;
    } finally {
      if (generation === this._generation && !this._isDisposed) {
        this._loading = false;
        this.emit();
      }
    }
    await this._fillRows(generation);
  }

  protected emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  /**
   * One poll tick. Rejects when the list fails so that the poll backs off.
   */
  private async _tick(): Promise<void> {
    if (this._loadingMore) {
      return; // do not throw away the page being appended
    }
    await this.refreshAll();
  }

  private _query() {
    return {
      status: this._statusFilter,
      nameContains: this._nameFilter,
      describe: false
    };
  }

  private _reloadNow(): void {
    this._resetList();
    void this._filterDebouncer.stop();
    void this.refresh();
  }

  /**
   * Describe the rows the list left undescribed, in one request per 100: the
   * server sends the descriptions out in one wave. A failure leaves the rows as
   * listed (the next poll asks again).
   */
  private async _fillRows(generation: number): Promise<void> {
    const names = this._jobs
      .filter(job => job.described === false)
      .map(job => job.name);
    const chunks: string[][] = [];
    for (let i = 0; i < names.length; i += MAX_PAGE_SIZE) {
      chunks.push(names.slice(i, i + MAX_PAGE_SIZE));
    }
    const answers = await Promise.all(
      chunks.map(chunk => this.api.describeJobs(chunk).catch(() => null))
    );
    if (generation !== this._generation || this._isDisposed) {
      return; // the list was reloaded meanwhile
    }
    const filled = new Map<string, IJobSummary>();
    for (const answer of answers) {
      answer?.jobs.forEach(job => filled.set(job.name, job));
    }
    if (filled.size === 0) {
      return;
    }
    this._jobs = this._jobs.map(job => {
      const described = filled.get(job.name);
      return job.described === false && described
        ? { ...job, ...described }
        : job;
    });
    this.emit();
  }

  /**
   * New filters: start from the first page again.
   */
  private _resetList(): void {
    this._generation++;
    this._rowsWanted = this._pageSize;
    this._nextToken = null;
    this._loaded = false;
    this._loading = false;
    this.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
  private _pageSize: number;
  private _rowsWanted: number;
  private _interval: number;
  private _poll: Poll<void, SMDebugError, 'standby'>;
  private _filterDebouncer: Debouncer<void, unknown>;
  private _visible = false;
  private _started = false;
  private _generation = 0;
  private _jobs: IJobSummary[] = [];
  private _nextToken: string | null = null;
  private _loading = false;
  private _loadingMore = false;
  private _loaded = false;
  private _error: SMDebugError | null = null;
  private _lastRefreshed: Date | null = null;
  private _nameFilter = '';
  private _statusFilter: JobStatus | '' = '';
}

export namespace JobListModel {
  export interface IOptions {
    api: ISMDebugAPI;
    /** Seconds between automatic refreshes; 0 turns them off. Default 15. */
    refreshInterval?: number;
    /** Jobs per page, at most 100. Default 20. */
    pageSize?: number;
    /** Milliseconds the name filter waits for typing to pause. Default 300. */
    filterDelay?: number;
  }

  /**
   * The poll frequency for an interval in seconds: backs off up to 5 minutes
   * on failures; 0 means never.
   */
  export function frequency(seconds: number): IPoll.Frequency {
    if (!(seconds > 0)) {
      return { interval: Poll.NEVER, backoff: true, max: Poll.NEVER };
    }
    const interval = Math.round(seconds * 1000);
    return { interval, backoff: true, max: Math.max(300 * 1000, interval) };
  }
}

/**
 * A listed row, with the description-only fields of the row it replaces while
 * its own description is on its way (no flicker between polls). It stays
 * `described: false`, so it is described again.
 */
export function keepDescribed(
  row: IJobSummary,
  previous: IJobSummary | undefined
): IJobSummary {
  if (row.described !== false || !previous || previous.described === false) {
    return row;
  }
  return {
    ...row,
    instance_count: previous.instance_count,
    instances: previous.instances,
    remote_debug: previous.remote_debug,
    started: row.started ?? previous.started
  };
}
