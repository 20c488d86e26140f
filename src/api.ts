import { requestAPI } from './request';
import {
  IDescriptions,
  IEnvironment,
  IJob,
  IJobPage,
  IJobQuery,
  ILogPage,
  ITerminalResponse,
  LogStream,
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
 * The `/sm-debug` REST API, one method per route.
 */
export interface ISMDebugAPI {
  listJobs(query?: IJobQuery): Promise<IJobPage>;
  describeJobs(names: string[]): Promise<IDescriptions>;
  getJob(job: string): Promise<IJob>;
  setRemoteDebug(job: string, enabled: boolean): Promise<IJob>;
  debugCopy(job: string, holdSeconds: number): Promise<IJob>;
  createTerminal(
    job: string,
    host: string,
    transport: Transport
  ): Promise<ITerminalResponse>;
  environment(): Promise<IEnvironment>;
  stopJob(job: string): Promise<IJob>;
  hostLogs(
    job: string,
    host: string,
    stream: LogStream,
    nextToken?: string | null,
    limit?: number
  ): Promise<ILogPage>;
}

/**
 * The REST client. Every method throws `SMDebugError` on failure.
 */
export class SMDebugAPI implements ISMDebugAPI {
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

  private _request: RequestFunction;
}
