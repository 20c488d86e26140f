import { IForward } from './forward';
import { requestAPI } from './request';
import {
  IEnvironment,
  IJob,
  IJobPage,
  IJobQuery,
  ITerminalResponse,
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
  getJob(job: string): Promise<IJob>;
  setRemoteDebug(job: string, enabled: boolean): Promise<IJob>;
  debugCopy(job: string, holdSeconds: number): Promise<IJob>;
  createTerminal(
    job: string,
    host: string,
    transport: Transport
  ): Promise<ITerminalResponse>;
  environment(): Promise<IEnvironment>;
}

/**
 * Port forwards: open one to a port of a host, end it, list them.
 */
export interface IForwardsAPI {
  openPort(
    job: string,
    host: string,
    port: number,
    transport?: Transport
  ): Promise<IForward>;
  closePort(job: string, host: string, port: number): Promise<void>;
  forwards(): Promise<{ forwards: IForward[] }>;
}

/**
 * The REST client. Every method throws `SMDebugError` on failure.
 */
export class SMDebugAPI implements ISMDebugAPI, IForwardsAPI {
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
    const search = params.toString();
    return this._request<IJobPage>(search ? `jobs?${search}` : 'jobs');
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

  private _request: RequestFunction;
}
