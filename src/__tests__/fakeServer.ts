import { RequestFunction } from '../api';
import { SMDebugError } from '../request';
import { IEnvironment, IJob, IJobPage, IJobSummary, JobStatus } from '../types';

/**
 * An in-memory `/sm-debug` server behind a fake `requestAPI`: it answers like
 * the real routes, records every call and can be told to fail.
 */
export class FakeServer {
  constructor(count = 45) {
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < count; i++) {
      const status: JobStatus =
        i % 5 === 0 ? 'Completed' : i % 7 === 0 ? 'Failed' : 'InProgress';
      this.jobs.push(
        makeJob(`job-${String(i).padStart(3, '0')}`, status, start + i * 60000)
      );
    }
    this.jobs.reverse(); // newest first, like ListTrainingJobs
  }

  jobs: IJob[] = [];
  calls: { method: string; path: string; body: unknown }[] = [];
  /** The next calls whose path starts with `prefix` fail with `error`, in order. */
  failures: { prefix: string; error: Error }[] = [];
  /** Resolve every answer only when `release()` is called. */
  hold = false;
  /** Jobs created by a debug copy stay out of the list (AWS listing lags). */
  listLag = false;
  /**
   * Jobs this server has no description of yet: a `describe=false` list gives
   * them as undescribed rows until `descriptions` describes them.
   */
  undescribed = new Set<string>();
  /** What `GET environment` answers. */
  environment: IEnvironment = {
    region: 'us-east-1',
    account: '123456789012',
    clients: {},
    versions: {},
    problems: []
  };
  /** Log lines by `job/host/stream`. */
  logs = new Map<string, { timestamp: number; message: string }[]>();

  /**
   * Append lines to a host's log.
   */
  log(job: string, host: string, messages: string[], stream = 'training') {
    const key = `${job}/${host}/${stream}`;
    const lines = this.logs.get(key) ?? [];
    for (const message of messages) {
      lines.push({ timestamp: Date.UTC(2026, 0, 1) + lines.length, message });
    }
    this.logs.set(key, lines);
  }

  release(): void {
    const waiting = this._held;
    this._held = [];
    waiting.forEach(resolve => resolve());
  }

  /**
   * The last call whose path starts with `prefix`.
   */
  lastCall(prefix = ''): { method: string; path: string; body: unknown } {
    const calls = this.calls.filter(call => call.path.startsWith(prefix));
    return calls[calls.length - 1];
  }

  callsTo(prefix: string): number {
    return this.calls.filter(call => call.path.startsWith(prefix)).length;
  }

  request: RequestFunction = async <T>(
    endPoint: string,
    init: RequestInit = {}
  ): Promise<T> => {
    const method = init.method ?? 'GET';
    const body = init.body ? JSON.parse(init.body as string) : undefined;
    this.calls.push({ method, path: endPoint, body });
    if (this.hold) {
      await new Promise<void>(resolve => this._held.push(resolve));
    }
    const index = this.failures.findIndex(f => endPoint.startsWith(f.prefix));
    if (index >= 0) {
      const [failure] = this.failures.splice(index, 1);
      throw failure.error;
    }
    return this._answer(method, endPoint, body) as T;
  };

  private _answer(method: string, endPoint: string, body: any): unknown {
    const url = new URL(endPoint, 'http://x/');
    const parts = url.pathname
      .split('/')
      .filter(Boolean)
      .map(decodeURIComponent);
    if (parts[0] === 'environment') {
      return this.environment;
    }
    if (parts[0] === 'descriptions') {
      const names = (url.searchParams.get('names') ?? '').split(',');
      const rows = this.jobs.filter(job => names.includes(job.name));
      rows.forEach(job => this.undescribed.delete(job.name));
      return {
        jobs: rows.map(job => ({ ...summaryOf(job), described: true })),
        errors: []
      };
    }
    if (parts[0] !== 'jobs') {
      throw notFound('route');
    }
    if (parts.length === 1) {
      const q = url.searchParams;
      let jobs = this.jobs.filter(
        job =>
          !(this.listLag && this._lagging.has(job.name)) &&
          (!q.get('status') || job.status === q.get('status')) &&
          job.name.includes(q.get('name_contains') ?? '')
      );
      const start = Number(q.get('next_token') ?? 0);
      const max = Number(q.get('max_results') ?? 20);
      const end = start + max;
      const next = end < jobs.length ? String(end) : null;
      jobs = jobs.slice(start, end);
      const partial = q.get('describe') === 'false';
      const page: IJobPage = {
        jobs: jobs.map(job =>
          partial && this.undescribed.has(job.name)
            ? {
                ...summaryOf(job),
                instance_count: null,
                instances: null,
                remote_debug: null,
                described: false
              }
            : summaryOf(job)
        ),
        next_token: next
      };
      return page;
    }
    const job = this.jobs.find(j => j.name === parts[1]);
    if (!job) {
      throw notFound(parts[1]);
    }
    if (parts.length === 2) {
      return structuredCloneJob(job);
    }
    if (parts[2] === 'remote-debug' && method === 'PUT') {
      if (job.secondary_status !== 'Training') {
        throw conflict(
          'wrong_state',
          `Remote debug can't change while ${job.name} is ${job.secondary_status}.`,
          'Remote debug changes only while a job is Downloading or Training.'
        );
      }
      job.remote_debug = { enabled: !!body.enabled };
      return structuredCloneJob(job);
    }
    if (parts[2] === 'debug-copy' && method === 'POST') {
      if (job.network_isolation) {
        throw conflict(
          'network_isolation',
          `${job.name} runs with network isolation, which SageMaker does not allow with remote debug.`,
          'Create the copy yourself without EnableNetworkIsolation.'
        );
      }
      const copy = makeJob(
        `${job.name}-debug-${String(++this._copies).padStart(4, '0')}`,
        'InProgress',
        Date.UTC(2026, 1, 1) + this._copies * 1000
      );
      copy.secondary_status = 'Starting';
      copy.remote_debug = { enabled: true };
      copy.hold_seconds = body.hold_seconds;
      this.jobs.unshift(copy); // the newest
      this._lagging.add(copy.name);
      return structuredCloneJob(copy);
    }
    if (parts[2] === 'stop' && method === 'POST') {
      if (job.status !== 'InProgress') {
        throw conflict(
          'wrong_state',
          `${job.name} is ${job.status}: only a job in progress can be stopped.`,
          'A finished job has nothing left to stop.'
        );
      }
      job.status = 'Stopping';
      job.secondary_status = 'Stopping';
      job.hold = null;
      return structuredCloneJob(job);
    }
    if (parts[2] === 'hosts' && parts[4] === 'logs' && method === 'GET') {
      const stream = url.searchParams.get('stream') ?? 'training';
      const lines = this.logs.get(`${job.name}/${parts[3]}/${stream}`);
      if (!lines) {
        return { events: [], next_token: null, stream: null };
      }
      const start = Number(url.searchParams.get('next_token') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 1000);
      const events = lines.slice(start, start + limit);
      return {
        events,
        next_token: String(start + events.length),
        stream: `${job.name}/${parts[3]}-1700000000`
      };
    }
    if (parts[2] === 'stacks' && method === 'POST') {
      return {
        job: job.name,
        transport: body.transport,
        hosts: {},
        groups: [],
        outliers: [],
        text: ''
      };
    }
    if (parts[2] === 'hosts' && parts[4] === 'state' && method === 'GET') {
      return {
        job: job.name,
        host: parts[3],
        transport: url.searchParams.get('transport') ?? 'ssm',
        gpus: [],
        load: [0.5, 0.4, 0.3],
        cpus: 8,
        memory: { total_bytes: null, available_bytes: null },
        disk: null,
        processes: []
      };
    }
    if (parts[2] === 'hosts' && parts[4] === 'ports' && method === 'POST') {
      return {
        job: job.name,
        host: parts[3],
        port: body.port,
        transport: body.transport,
        local_port: 40000 + Number(body.port),
        target: `${job.name}_${parts[3]}`,
        url: `/sm-debug/proxy/${job.name}/${parts[3]}/${body.port}/`,
        created: 0
      };
    }
    if (parts[2] === 'hosts' && parts[4] === 'terminals' && method === 'POST') {
      return {
        terminal: {
          name: `smdebug_${job.name}__${parts[3]}__${body.transport}`.replace(
            /\W/g,
            '_'
          )
        },
        transport: body.transport,
        target: `${job.name}_${parts[3]}`,
        reused: false
      };
    }
    throw notFound(endPoint);
  }

  private _held: (() => void)[] = [];
  private _copies = 0;
  private _lagging = new Set<string>();
}

export function makeJob(
  name: string,
  status: JobStatus,
  created: number
): IJob & { hold_seconds?: number } {
  const running = status === 'InProgress';
  return {
    name,
    status,
    secondary_status: running ? 'Training' : status,
    created: new Date(created).toISOString(),
    instance_count: 2,
    remote_debug: { enabled: false },
    hosts: [
      { name: 'algo-1', instance_type: 'ml.g5.xlarge', group: null },
      { name: 'algo-2', instance_type: 'ml.g5.xlarge', group: null }
    ],
    network_isolation: false,
    vpc: null,
    failure_reason: status === 'Failed' ? 'AlgorithmError: exit 1' : null,
    attach: {
      ssm: { ok: running, reason: running ? '' : 'The job is not running.' },
      ssh: { ok: running, reason: running ? '' : 'The job is not running.' }
    }
  };
}

function structuredCloneJob(job: IJob): IJob {
  return JSON.parse(JSON.stringify(job));
}

function conflict(code: string, message: string, hint: string): SMDebugError {
  return new SMDebugError({ status: 409, code, message, hint });
}

function notFound(what: string): SMDebugError {
  return new SMDebugError({
    status: 404,
    code: 'not_found',
    message: `No such ${what}.`,
    hint: 'Check the name.'
  });
}

function summaryOf(job: IJob): IJobSummary {
  const { name, status, secondary_status, created, instance_count } = job;
  return {
    name,
    status,
    secondary_status,
    created,
    instance_count,
    remote_debug: { ...job.remote_debug },
    ...(job.hold_window !== undefined ? { hold_window: job.hold_window } : {})
  };
}
