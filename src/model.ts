import { Token } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ActionStates } from './actions';
import { JobListModel } from './joblist';
import { SMDebugError } from './request';
import {
  IAttachState,
  IEnvironment,
  IHoldPlan,
  IJob,
  IJobSummary,
  isFinished,
  isValidHold,
  Transport
} from './types';

export { MAX_PAGE_SIZE, NAME_FILTER_PATTERN, keepDescribed } from './joblist';

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
 * The state of the SageMaker Debug sidebar: the job list (`JobListModel`),
 * the expanded jobs' descriptions, the actions on a job (remote debug, stop,
 * debug copy) and the environment check. React components only render it;
 * everything that talks to the server lives here.
 */
export class JobsModel extends JobListModel {
  constructor(options: JobsModel.IOptions) {
    super(options);
    this._defaultTransport = options.defaultTransport ?? 'ssm';
    this._holdSeconds = options.debugCopyHoldSeconds ?? DEFAULT_HOLD_SECONDS;
    this._noSSHClient =
      options.noSSHClientReason ??
      'The Jupyter server has no ssh client: install OpenSSH there, or attach over SSM.';
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
      this.emit();
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
      this.emit();
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
      this.emit();
    }
  }

  /**
   * Reload the list (keeping as many rows as are loaded), the expanded running
   * jobs and the environment check. Never rejects: failures land in `error`.
   */
  async refresh(): Promise<void> {
    await Promise.all([super.refresh(), this.loadEnvironment()]);
  }

  /**
   * The list's error unless the environment check already tells it (no
   * credentials, no region...): one problem, said once.
   */
  get listError(): SMDebugError | null {
    const error = this.error;
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
    this.emit();
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
    this.emit();
    const request = this.api
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
        this.emit();
      });
    this._detailRequests.set(job, request);
    return request;
  }

  /**
   * The state of a remote-debug change for a job.
   */
  remoteDebug(job: string): IRemoteDebugState {
    const { pending, error } = this._remoteDebug.get(job);
    return { pending, error };
  }

  /**
   * Ask the server to turn remote debug on or off. Not optimistic: the job's
   * `remote_debug` changes only when the server says it did; a refusal is kept
   * in `remoteDebug(job).error` with the server's message and hint.
   *
   * @returns whether the server made the change
   */
  async setRemoteDebug(job: string, enabled: boolean): Promise<boolean> {
    const done = await this._remoteDebug.run(job, enabled, () =>
      this._describedBy(this.api.setRemoteDebug(job, enabled))
    );
    return done !== null;
  }

  /**
   * Forget a refused remote-debug change (the user dismissed the message).
   */
  clearRemoteDebugError(job: string): void {
    this._remoteDebug.clearError(job);
  }

  /**
   * The state of a stop asked for a job.
   */
  stopState(job: string): IStopState {
    const { pending, error } = this._stops.get(job);
    return { pending: pending !== null, error };
  }

  /**
   * Stop a job (StopTrainingJob). The job's status changes when the server
   * says it did; a refusal (409: it already finished) is kept in
   * `stopState(job).error` with the server's reason.
   *
   * @returns whether the server stopped the job
   */
  async stopJob(job: string): Promise<boolean> {
    const done = await this._stops.run(job, true, () =>
      this._describedBy(this.api.stopJob(job))
    );
    return done !== null;
  }

  /**
   * Forget a refused stop (the user dismissed the message).
   */
  clearStopError(job: string): void {
    this._stops.clearError(job);
  }

  /**
   * The state of a debug copy started from a job.
   */
  debugCopyState(job: string): IDebugCopyState {
    const { pending, error, result } = this._debugCopies.get(job);
    return { pending: pending !== null, error, copy: result?.name ?? null };
  }

  /**
   * How a debug copy of `job` would hold (shown in the dialog before launch),
   * or null when the server could not say.
   */
  async debugCopyPlan(job: string): Promise<IHoldPlan | null> {
    try {
      return (await this.api.previewDebugCopy(job)).hold;
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
    const copy = await this._debugCopies.run(job, true, () =>
      this.api.debugCopy(job, holdSeconds)
    );
    if (copy) {
      this._details.set(copy.name, { job: copy, loading: false, error: null });
      await this.reveal(copy);
    }
    return copy;
  }

  /**
   * Forget a refused debug copy (the user dismissed the message).
   */
  clearDebugCopyError(job: string): void {
    this._debugCopies.clearError(job);
  }

  /**
   * Bring a job into the list and select it: clear the filters that would hide
   * it, reload, expand its row and ask the view to scroll to it.
   */
  async reveal(job: IJobSummary): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    await this.showInList(job);
    if (this.isDisposed) {
      return;
    }
    this._selected = job.name;
    this.setExpanded(job.name, true);
    this.emit();
    this._revealRequested.emit(job.name);
  }

  /**
   * Run the pre-flight check again. Never rejects.
   */
  async loadEnvironment(): Promise<IEnvironment | null> {
    try {
      this._environment = await this.api.environment();
      this._environmentError = null;
    } catch (reason) {
      this._environmentError = SMDebugError.from(reason);
    }
    this.emit();
    return this._environment;
  }

  /**
   * Whether a transport can reach a job's hosts now, and if not, why: the
   * server's answer, unless the environment check found no ssh client on the
   * Jupyter server (then SSH cannot attach, whatever the container runs).
   */
  attachState(job: IJob, transport: Transport): IAttachState {
    const clients = this._environment?.clients;
    if (transport === 'ssh' && clients && 'ssh' in clients && !clients.ssh) {
      return { ok: false, reason: this._noSSHClient };
    }
    return job.attach?.[transport] ?? { ok: false, reason: '' };
  }

  /**
   * A job from the list or a loaded description.
   */
  find(job: string): IJobSummary | undefined {
    return (
      this._details.get(job)?.job ??
      this.jobs.find(summary => summary.name === job)
    );
  }

  protected onStart(): void {
    void this.loadEnvironment();
  }

  /**
   * The list and the expanded running jobs.
   */
  protected async refreshAll(): Promise<void> {
    const details = [...this._expanded]
      .filter(job => {
        const known = this._details.get(job)?.job;
        return !known || !isFinished(known.status);
      })
      .map(job => this.loadDetail(job));
    await Promise.all([super.refreshAll(), ...details]);
    await this.loadHolds();
  }

  /**
   * Ask each running row that was given a hold window for its hold, so a held
   * job shows as held while collapsed, after a reload too.
   */
  async loadHolds(): Promise<void> {
    const held = this.jobs
      .filter(
        job =>
          job.status === 'InProgress' &&
          (job.hold_window ?? 0) > 0 &&
          !this._expanded.has(job.name)
      )
      .map(job => this.loadDetail(job.name));
    await Promise.all(held);
  }

  /**
   * Keep the description an action answered with.
   */
  private async _describedBy(answer: Promise<IJob>): Promise<IJob> {
    const job = await answer;
    this._setDetail(job);
    return job;
  }

  /**
   * Keep a description and bring its list row up to date with it.
   */
  private _setDetail(job: IJob): void {
    this._details.set(job.name, { job, loading: false, error: null });
    this.updateRow(job.name, row => ({
      ...row,
      status: job.status,
      secondary_status: job.secondary_status,
      instance_count: job.instance_count,
      remote_debug: job.remote_debug,
      ended: job.ended ?? row.ended,
      training_seconds: job.training_seconds ?? row.training_seconds,
      billable_seconds: job.billable_seconds ?? row.billable_seconds
    }));
  }

  private _expanded = new Set<string>();
  private _details = new Map<string, IDetailState>();
  private _detailRequests = new Map<string, Promise<IJob | null>>();
  private _remoteDebug = new ActionStates<boolean, IJob>(() => this.emit());
  private _debugCopies = new ActionStates<true, IJob>(() => this.emit());
  private _stops = new ActionStates<true, IJob>(() => this.emit());
  private _holdSeconds: number;
  private _selected: string | null = null;
  private _revealRequested = new Signal<this, string>(this);
  private _defaultTransport: Transport;
  private _environment: IEnvironment | null = null;
  private _environmentError: SMDebugError | null = null;
  private _noSSHClient: string;
}

export namespace JobsModel {
  export interface IOptions extends JobListModel.IOptions {
    /** The transport Attach offers first. Default 'ssm'. */
    defaultTransport?: Transport;
    /** The hold window a debug copy offers, in seconds. Default 1800. */
    debugCopyHoldSeconds?: number;
    /** What to say when SSH cannot attach for want of an ssh client (translated). */
    noSSHClientReason?: string;
  }
}

/**
 * The SageMaker Debug model: the job list, the jobs' descriptions and the
 * actions on them, with the REST client (`api`) every view shares.
 */
export type ISMDebugModel = JobsModel;

/**
 * The token of the model, provided by the `jupyter-sm-debug:model` plugin.
 */
export const ISMDebugModel = new Token<ISMDebugModel>(
  'jupyter-sm-debug:ISMDebugModel',
  'The SageMaker Debug job list and the actions on its jobs.'
);
