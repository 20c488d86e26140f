import { IDisposable } from '@lumino/disposable';
import { Debouncer, IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ISMDebugAPI } from './api';
import { SMDebugError } from './request';
import {
  IEnvironment,
  IHoldPlan,
  IJob,
  IJobSummary,
  isFinished,
  isValidHold,
  JobStatus,
  Transport
} from './types';

/**
 * What `name_contains` accepts (the server rejects anything else with a 400).
 */
export const NAME_FILTER_PATTERN = /^[a-zA-Z0-9-]{0,63}$/;

/**
 * The largest page the server serves.
 */
export const MAX_PAGE_SIZE = 100;

/**
 * One expanded job's description.
 */
export interface IDetailState {
  /** The last description the server gave; null until the first one. */
  job: IJob | null;
  loading: boolean;
  error: SMDebugError | null;
}

/**
 * A remote-debug change in flight or refused.
 */
export interface IRemoteDebugState {
  /** The value asked for while the request is in flight. */
  pending: boolean | null;
  error: SMDebugError | null;
}

/**
 * A debug copy being started from a job, or why it could not be.
 */
export interface IDebugCopyState {
  pending: boolean;
  error: SMDebugError | null;
  /** The name of the last copy started from this job. */
  copy: string | null;
}

/**
 * A stop in flight or refused.
 */
export interface IStopState {
  pending: boolean;
  error: SMDebugError | null;
}

/**
 * The default hold window of a debug copy, in seconds.
 */
export const DEFAULT_HOLD_SECONDS = 1800;

/**
 * The state of the SageMaker Debug sidebar: the job list with its filters and
 * paging, the expanded jobs' descriptions, remote-debug changes and the
 * environment check. React components only render it; everything that talks to
 * the server lives here.
 */
export class JobsModel implements IDisposable {
  constructor(options: JobsModel.IOptions) {
    this._api = options.api;
    this._pageSize = Math.min(options.pageSize ?? 20, MAX_PAGE_SIZE);
    this._rowsWanted = this._pageSize;
    this._interval = options.refreshInterval ?? 15;
    this._defaultTransport = options.defaultTransport ?? 'ssm';
    this._holdSeconds = options.debugCopyHoldSeconds ?? DEFAULT_HOLD_SECONDS;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: JobsModel.frequency(this._interval),
      name: 'jupyter-sm-debug:jobs',
      standby: () => !this._visible || 'when-hidden'
    });
    this._filterDebouncer = new Debouncer(
      () => this.refresh(),
      options.filterDelay ?? 300
    );
  }

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

  get environment(): IEnvironment | null {
    return this._environment;
  }

  get environmentError(): SMDebugError | null {
    return this._environmentError;
  }

  /**
   * The transport Attach offers first (from the settings).
   */
  get defaultTransport(): Transport {
    return this._defaultTransport;
  }
  set defaultTransport(transport: Transport) {
    if (transport !== this._defaultTransport) {
      this._defaultTransport = transport;
      this._emit();
    }
  }

  /**
   * The hold window a debug copy offers by default, in seconds (from the
   * settings). Values the server would refuse are ignored.
   */
  get debugCopyHoldSeconds(): number {
    return this._holdSeconds;
  }
  set debugCopyHoldSeconds(seconds: number) {
    if (isValidHold(seconds) && seconds !== this._holdSeconds) {
      this._holdSeconds = seconds;
      this._emit();
    }
  }

  /**
   * Emitted with a job's name when the view should bring its row into view and
   * focus it (e.g. a debug copy that was just started).
   */
  get revealRequested(): ISignal<this, string> {
    return this._revealRequested;
  }

  /**
   * The selected job (the last one opened or revealed); null when none.
   */
  get selected(): string | null {
    return this._selected;
  }

  select(job: string | null): void {
    if (job !== this._selected) {
      this._selected = job;
      this._emit();
    }
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
    this._poll.frequency = JobsModel.frequency(seconds);
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
      void this.loadEnvironment();
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
   * Reload the list (keeping as many rows as are loaded), the expanded running
   * jobs and the environment check. Never rejects: failures land in `error`.
   */
  async refresh(): Promise<void> {
    await Promise.all([
      this._refreshAll().catch(() => undefined),
      this.loadEnvironment()
    ]);
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
    this._emit();
    try {
      const page = await this._api.listJobs({
        status: this._statusFilter,
        nameContains: this._nameFilter,
        maxResults: this._pageSize,
        nextToken: this._nextToken,
        describe: false
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
      this._emit();
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
      this._emit();
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
   * The list's error unless the environment check already tells it (no
   * credentials, no region...): one problem, said once.
   */
  get listError(): SMDebugError | null {
    const error = this._error;
    if (!error) {
      return null;
    }
    const problems = this._environment?.problems ?? [];
    const known =
      problems.some(problem => problem.code === error.code) ||
      this._environmentError?.code === error.code;
    return known ? null : error;
  }

  /**
   * Filter by status ('' for all); the list reloads at once.
   */
  setStatusFilter(status: JobStatus | ''): void {
    if (status === this._statusFilter) {
      return;
    }
    this._statusFilter = status;
    this._resetList();
    void this._filterDebouncer.stop();
    void this.refresh();
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
    this._resetList();
    void this._filterDebouncer.stop();
    void this.refresh();
  }

  /**
   * Whether a job's row is expanded.
   */
  isExpanded(job: string): boolean {
    return this._expanded.has(job);
  }

  /**
   * Expand or collapse a job's row; expanding loads its description.
   */
  setExpanded(job: string, expanded: boolean): void {
    if (expanded === this._expanded.has(job)) {
      return;
    }
    if (expanded) {
      this._expanded.add(job);
      void this.loadDetail(job);
    } else {
      this._expanded.delete(job);
    }
    this._emit();
  }

  toggleExpanded(job: string): void {
    this.setExpanded(job, !this._expanded.has(job));
  }

  /**
   * A job's description state, if it was ever asked for.
   */
  detail(job: string): IDetailState | undefined {
    return this._details.get(job);
  }

  /**
   * Load a job's description. A finished job's description is kept for good;
   * a running job's is fetched again each time.
   *
   * @returns the description, or null when it could not be loaded
   */
  loadDetail(job: string, force = false): Promise<IJob | null> {
    const current = this._details.get(job);
    if (current?.job && isFinished(current.job.status) && !force) {
      return Promise.resolve(current.job);
    }
    const inFlight = this._detailRequests.get(job);
    if (inFlight) {
      return inFlight;
    }
    const state: IDetailState = {
      job: current?.job ?? null,
      loading: true,
      error: null
    };
    this._details.set(job, state);
    this._emit();
    const request = this._api
      .getJob(job)
      .then(description => {
        this._setDetail(description);
        return description;
      })
      .catch(reason => {
        this._details.set(job, {
          job: state.job,
          loading: false,
          error: SMDebugError.from(reason)
        });
        return null;
      })
      .finally(() => {
        this._detailRequests.delete(job);
        this._emit();
      });
    this._detailRequests.set(job, request);
    return request;
  }

  /**
   * The state of a remote-debug change for a job.
   */
  remoteDebug(job: string): IRemoteDebugState {
    return this._remoteDebug.get(job) ?? { pending: null, error: null };
  }

  /**
   * Ask the server to turn remote debug on or off. Not optimistic: the job's
   * `remote_debug` changes only when the server says it did; a refusal is kept
   * in `remoteDebug(job).error` with the server's message and hint.
   *
   * @returns whether the server made the change
   */
  async setRemoteDebug(job: string, enabled: boolean): Promise<boolean> {
    if ((this._remoteDebug.get(job)?.pending ?? null) !== null) {
      return false;
    }
    this._remoteDebug.set(job, { pending: enabled, error: null });
    this._emit();
    try {
      const description = await this._api.setRemoteDebug(job, enabled);
      this._setDetail(description);
      this._remoteDebug.delete(job);
      return true;
    } catch (reason) {
      this._remoteDebug.set(job, {
        pending: null,
        error: SMDebugError.from(reason)
      });
      return false;
    } finally {
      this._emit();
    }
  }

  /**
   * Forget a refused remote-debug change (the user dismissed the message).
   */
  clearRemoteDebugError(job: string): void {
    if (this._remoteDebug.delete(job)) {
      this._emit();
    }
  }

  /**
   * The state of a stop asked for a job.
   */
  stopState(job: string): IStopState {
    return this._stops.get(job) ?? { pending: false, error: null };
  }

  /**
   * Stop a job (StopTrainingJob). The job's status changes when the server
   * says it did; a refusal (409: it already finished) is kept in
   * `stopState(job).error` with the server's reason.
   *
   * @returns whether the server stopped the job
   */
  async stopJob(job: string): Promise<boolean> {
    if (this._stops.get(job)?.pending) {
      return false;
    }
    this._stops.set(job, { pending: true, error: null });
    this._emit();
    try {
      this._setDetail(await this._api.stopJob(job));
      this._stops.delete(job);
      return true;
    } catch (reason) {
      this._stops.set(job, {
        pending: false,
        error: SMDebugError.from(reason)
      });
      return false;
    } finally {
      this._emit();
    }
  }

  /**
   * Forget a refused stop (the user dismissed the message).
   */
  clearStopError(job: string): void {
    if (this._stops.delete(job)) {
      this._emit();
    }
  }

  /**
   * The state of a debug copy started from a job.
   */
  debugCopyState(job: string): IDebugCopyState {
    return (
      this._debugCopies.get(job) ?? { pending: false, error: null, copy: null }
    );
  }

  /**
   * How a debug copy of `job` would hold (shown in the dialog before launch),
   * or null when the server could not say.
   */
  async debugCopyPlan(job: string): Promise<IHoldPlan | null> {
    try {
      return (await this._api.previewDebugCopy(job)).hold;
    } catch {
      return null; // the dialog then says nothing about the hold; the launch reports errors
    }
  }

  /**
   * Start a copy of `job` with remote debug on and a hold window, then show it:
   * reload the list (clearing filters that would hide it), expand it and
   * select it. A refusal is kept in `debugCopyState(job).error` with the
   * server's message and hint.
   *
   * @returns the new job, or null when the server refused or one is in flight
   */
  async debugCopy(job: string, holdSeconds: number): Promise<IJob | null> {
    const current = this.debugCopyState(job);
    if (current.pending) {
      return null;
    }
    this._debugCopies.set(job, { pending: true, error: null, copy: null });
    this._emit();
    let copy: IJob;
    try {
      copy = await this._api.debugCopy(job, holdSeconds);
    } catch (reason) {
      this._debugCopies.set(job, {
        pending: false,
        error: SMDebugError.from(reason),
        copy: null
      });
      this._emit();
      return null;
    }
    this._debugCopies.set(job, {
      pending: false,
      error: null,
      copy: copy.name
    });
    this._details.set(copy.name, { job: copy, loading: false, error: null });
    await this.reveal(copy);
    return copy;
  }

  /**
   * Forget a refused debug copy (the user dismissed the message).
   */
  clearDebugCopyError(job: string): void {
    const state = this._debugCopies.get(job);
    if (state?.error) {
      this._debugCopies.set(job, { ...state, error: null });
      this._emit();
    }
  }

  /**
   * Bring a job into the list and select it: clear the filters that would hide
   * it, reload, expand its row and ask the view to scroll to it. A job that
   * the server does not list yet (listing lags creation on AWS) is put first.
   */
  async reveal(job: IJobSummary): Promise<void> {
    if (this._isDisposed) {
      return;
    }
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
    await this._loadList().catch(() => undefined);
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
    this._selected = job.name;
    this.setExpanded(job.name, true);
    this._emit();
    this._revealRequested.emit(job.name);
  }

  /**
   * Run the pre-flight check again. Never rejects.
   */
  async loadEnvironment(): Promise<IEnvironment | null> {
    try {
      this._environment = await this._api.environment();
      this._environmentError = null;
    } catch (reason) {
      this._environmentError = SMDebugError.from(reason);
    }
    this._emit();
    return this._environment;
  }

  /**
   * A job from the list or a loaded description.
   */
  find(job: string): IJobSummary | undefined {
    return (
      this._details.get(job)?.job ??
      this._jobs.find(summary => summary.name === job)
    );
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
   * One poll tick: the list and the expanded running jobs. Rejects when the
   * list fails so that the poll backs off.
   */
  private async _tick(): Promise<void> {
    if (this._loadingMore) {
      return; // do not throw away the page being appended
    }
    await this._refreshAll();
  }

  private async _refreshAll(): Promise<void> {
    const list = this._loadList();
    const details = [...this._expanded]
      .filter(job => {
        const known = this._details.get(job)?.job;
        return !known || !isFinished(known.status);
      })
      .map(job => this.loadDetail(job));
    await Promise.all([list, ...details]);
  }

  private async _loadList(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    if (!this.nameFilterValid) {
      this._jobs = [];
      this._nextToken = null;
      this._emit();
      return;
    }
    const generation = ++this._generation;
    this._loading = true;
    this._emit();
    try {
      const page = await this._api.listJobs({
        status: this._statusFilter,
        nameContains: this._nameFilter,
        maxResults: Math.min(MAX_PAGE_SIZE, this._rowsWanted),
        describe: false
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
      // A description is fresher than a list row only if it is newer: keep the
      // list's status, which the server may have just updated.
    } catch (reason) {
      if (generation !== this._generation || this._isDisposed) {
        return;
      }
      this._error = SMDebugError.from(reason);
      throw this._error;
    } finally {
      if (generation === this._generation && !this._isDisposed) {
        this._loading = false;
        this._emit();
      }
    }
    await this._fillRows(generation);
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
      chunks.map(chunk => this._api.describeJobs(chunk).catch(() => null))
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
    this._emit();
  }

  /**
   * Keep a description and bring its list row up to date with it.
   */
  private _setDetail(job: IJob): void {
    this._details.set(job.name, { job, loading: false, error: null });
    const index = this._jobs.findIndex(summary => summary.name === job.name);
    if (index >= 0) {
      const row = this._jobs[index];
      const jobs = this._jobs.slice();
      jobs[index] = {
        ...row,
        status: job.status,
        secondary_status: job.secondary_status,
        instance_count: job.instance_count,
        remote_debug: job.remote_debug,
        ended: job.ended ?? row.ended,
        training_seconds: job.training_seconds ?? row.training_seconds,
        billable_seconds: job.billable_seconds ?? row.billable_seconds
      };
      this._jobs = jobs;
    }
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
    this._emit();
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _api: ISMDebugAPI;
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
  private _expanded = new Set<string>();
  private _details = new Map<string, IDetailState>();
  private _detailRequests = new Map<string, Promise<IJob | null>>();
  private _remoteDebug = new Map<string, IRemoteDebugState>();
  private _debugCopies = new Map<string, IDebugCopyState>();
  private _stops = new Map<string, IStopState>();
  private _holdSeconds: number;
  private _selected: string | null = null;
  private _revealRequested = new Signal<this, string>(this);
  private _defaultTransport: Transport = 'ssm';
  private _environment: IEnvironment | null = null;
  private _environmentError: SMDebugError | null = null;
}

export namespace JobsModel {
  export interface IOptions {
    api: ISMDebugAPI;
    /** Seconds between automatic refreshes; 0 turns them off. Default 15. */
    refreshInterval?: number;
    /** The transport Attach offers first. Default 'ssm'. */
    defaultTransport?: Transport;
    /** The hold window a debug copy offers, in seconds. Default 1800. */
    debugCopyHoldSeconds?: number;
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
