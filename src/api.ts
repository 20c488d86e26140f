import { requestAPI } from './request';
import {
  IDescriptions,
  IEnvironment,
  IForward,
  IHoldPlan,
  IHostState,
  IJob,
  IJobPage,
  IJobQuery,
  IKernelStart,
  ILogPage,
  ITerminalResponse,
  IRunResponse,
  IStacksResponse,
  LogStream,
  RunCommand,
  Transport
} from './types';

/**
 * How the client reaches the server: `requestAPI` in the app, a fake in tests.
 */
export type RequestFunction = <T>(
  endPoint: string,
  init?: RequestInit
) => Promise<T>;

/**
 * Where a host command runs: some hosts (all when left out), over a transport.
 */
export interface IHostsOptions {
  hosts?: string[];
  transport?: Transport;
}

/**
 * The `/sm-debug` REST API, one method per route: the client's public face,
 * which tests fake by giving the client another `RequestFunction`.
 */
export type ISMDebugAPI = Pick<SMDebugAPI, keyof SMDebugAPI>;

/**
 * The one REST client. Every method throws `SMDebugError` on failure.
 */
export class SMDebugAPI {
  constructor(request: RequestFunction = requestAPI) {
    this._request = request;
  }

  listJobs(query: IJobQuery = {}): Promise<IJobPage> {
    const params = new URLSearchParams();
    if (query.status) {
      params.set('status', query.status);
    }
    if (query.nameContains) {
      params.set('name_contains', query.nameContains);
    }
    if (query.maxResults) {
      params.set('max_results', String(query.maxResults));
    }
    if (query.nextToken) {
      params.set('next_token', query.nextToken);
    }
    if (query.describe === false) {
      params.set('describe', 'false');
    }
    const search = params.toString();
    return this._request<IJobPage>(search ? `jobs?${search}` : 'jobs');
  }

  describeJobs(names: string[]): Promise<IDescriptions> {
    const params = new URLSearchParams({ names: names.join(',') });
    return this._request<IDescriptions>(`descriptions?${params.toString()}`);
  }

  getJob(job: string): Promise<IJob> {
    return this._request<IJob>(`jobs/${encodeURIComponent(job)}`);
  }

  setRemoteDebug(job: string, enabled: boolean): Promise<IJob> {
    return this._request<IJob>(`jobs/${encodeURIComponent(job)}/remote-debug`, {
      method: 'PUT',
      body: JSON.stringify({ enabled })
    });
  }

  /**
   * Start a copy of a job with remote debug on, whose containers stay up for
   * `holdSeconds` after a failure. Answers with the new job.
   */
  debugCopy(job: string, holdSeconds: number): Promise<IJob> {
    return this._request<IJob>(`jobs/${encodeURIComponent(job)}/debug-copy`, {
      method: 'POST',
      body: JSON.stringify({ hold_seconds: holdSeconds })
    });
  }

  /**
   * How a debug copy of `job` would hold, without starting it (dry run).
   */
  previewDebugCopy(job: string): Promise<{ name: string; hold: IHoldPlan }> {
    return this._request(`jobs/${encodeURIComponent(job)}/debug-copy`, {
      method: 'POST',
      body: JSON.stringify({ dry_run: true })
    });
  }

  createTerminal(
    job: string,
    host: string,
    transport: Transport
  ): Promise<ITerminalResponse> {
    return this._request<ITerminalResponse>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/terminals`,
      { method: 'POST', body: JSON.stringify({ transport }) }
    );
  }

  /**
   * Start a Python kernel inside the host (the container's own Python).
   */
  startKernel(
    job: string,
    host: string,
    transport?: Transport
  ): Promise<IKernelStart> {
    return this._request<IKernelStart>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/kernels`,
      { method: 'POST', body: JSON.stringify({ transport }) }
    );
  }

  openPort(
    job: string,
    host: string,
    port: number,
    transport?: Transport
  ): Promise<IForward> {
    return this._request<IForward>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/ports`,
      { method: 'POST', body: JSON.stringify({ port, transport }) }
    );
  }

  async closePort(job: string, host: string, port: number): Promise<void> {
    await this._request<unknown>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/ports/${port}`,
      { method: 'DELETE' }
    );
  }

  forwards(): Promise<{ forwards: IForward[] }> {
    return this._request<{ forwards: IForward[] }>('forwards');
  }

  environment(): Promise<IEnvironment> {
    return this._request<IEnvironment>('environment');
  }

  /**
   * StopTrainingJob. Answers with the job, now Stopping.
   */
  stopJob(job: string): Promise<IJob> {
    return this._request<IJob>(`jobs/${encodeURIComponent(job)}/stop`, {
      method: 'POST'
    });
  }

  /**
   * Python stacks of the training on every host (or `hosts`), grouped, the
   * outlier marked.
   */
  stacks(job: string, options: IHostsOptions = {}): Promise<IStacksResponse> {
    return this._request<IStacksResponse>(
      `jobs/${encodeURIComponent(job)}/stacks`,
      { method: 'POST', body: JSON.stringify(options) }
    );
  }

  /**
   * One command on every host (or `hosts`) at once; per host its exit code
   * and output.
   */
  runOnHosts(
    job: string,
    command: RunCommand,
    options: IHostsOptions & { timeout?: number } = {}
  ): Promise<IRunResponse> {
    return this._request<IRunResponse>(`jobs/${encodeURIComponent(job)}/run`, {
      method: 'POST',
      body: JSON.stringify({ ...command, ...options })
    });
  }

  /**
   * A page of a host's log: from the start, or after `nextToken`.
   */
  hostLogs(
    job: string,
    host: string,
    stream: LogStream,
    nextToken?: string | null,
    limit?: number
  ): Promise<ILogPage> {
    const params = new URLSearchParams({ stream });
    if (nextToken) {
      params.set('next_token', nextToken);
    }
    if (limit) {
      params.set('limit', String(limit));
    }
    return this._request<ILogPage>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/logs?${params}`
    );
  }

  /**
   * A host's GPUs, load, memory, disk and top processes.
   */
  hostState(
    job: string,
    host: string,
    transport?: Transport
  ): Promise<IHostState> {
    const query = transport
      ? `?${new URLSearchParams({ transport }).toString()}`
      : '';
    return this._request<IHostState>(
      `jobs/${encodeURIComponent(job)}/hosts/${encodeURIComponent(host)}/state${query}`
    );
  }

  private _request: RequestFunction;
}
