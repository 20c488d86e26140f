/**
 * The shapes of the `/sm-debug` REST API (see jupyter_sm_debug/openapi.yaml).
 * Dates are ISO 8601 strings.
 */

/**
 * A training job's `TrainingJobStatus`.
 */
export type JobStatus =
  'InProgress' | 'Completed' | 'Failed' | 'Stopping' | 'Stopped' | 'Deleting';

/**
 * The statuses the job list can be filtered by.
 */
export const FILTER_STATUSES: readonly JobStatus[] = [
  'InProgress',
  'Completed',
  'Failed',
  'Stopping',
  'Stopped'
];

/**
 * How Attach reaches a host: the one list of transports the front end knows.
 */
export const TRANSPORTS = ['ssm', 'ssh'] as const;

export type Transport = (typeof TRANSPORTS)[number];

/**
 * Whether a value (e.g. a command argument) names a transport.
 */
export function isTransport(value: unknown): value is Transport {
  return TRANSPORTS.includes(value as Transport);
}

/**
 * One row of `GET /sm-debug/jobs`.
 */
export interface IJobSummary {
  name: string;
  status: JobStatus;
  secondary_status: string | null;
  /** The hold window a running job was given (0: none; null: not described). */
  hold_window?: number | null;
  /** True on a running job the Failed filter lists because its containers are held. */
  held?: boolean;
  created: string | null;
  started?: string | null;
  ended?: string | null;
  /** Null in a row not yet described (`described` false). */
  instance_count: number | null;
  /** What the job runs on, one item per instance group; null until described. */
  instances?: IInstances[] | null;
  /** Set once the job has finished. */
  training_seconds?: number | null;
  /** Set once the job has finished (less than training time with spot). */
  billable_seconds?: number | null;
  /** The job's page in the AWS console. */
  console_url?: string | null;
  /** Null in a row not yet described. */
  remote_debug: { enabled: boolean } | null;
  /**
   * False in a row made from ListTrainingJobs alone: instances, remote debug and
   * the times arrive with its description (`ISMDebugAPI.describeJobs`).
   */
  described?: boolean;
}

/**
 * Rows for the jobs a `describe: false` list left undescribed.
 */
export interface IDescriptions {
  jobs: IJobSummary[];
  errors: {
    name: string;
    error: { code: string; message: string; hint: string };
  }[];
}

/**
 * One instance group of a job (or the job's only one).
 */
export interface IInstances {
  type: string | null;
  count: number;
  group: string | null;
}

/**
 * A job whose failed containers sm-debug-entrypoint holds for debugging.
 */
export interface IHold {
  hosts: string[];
  since: string;
  until: string;
  seconds: number;
  /** The failure's last lines, from the host's log. */
  last_lines: string[];
  /** What ends the hold at `until`: its window, or the job's MaxRuntimeInSeconds. */
  limited_by?: 'hold' | 'runtime';
}

/**
 * `GET /sm-debug/jobs`.
 */
export interface IJobPage {
  jobs: IJobSummary[];
  next_token: string | null;
}

/**
 * One host (container) of a job: `algo-1` ... `algo-N`.
 */
export interface IHost {
  name: string;
  instance_type: string | null;
  group: string | null;
}

/**
 * Whether a transport can attach right now, and why not.
 */
export interface IAttachState {
  ok: boolean;
  reason: string;
}

/**
 * `GET /sm-debug/jobs/{job}`.
 */
/**
 * How a debug copy holds its failed containers (the server reads the job's
 * command and image): "wrapper" runs `command` under the hold wrapper;
 * "entrypoint": the image's own sm-debug-entrypoint holds; "none" holds
 * nothing, and `reason` says why.
 */
export interface IHoldPlan {
  mechanism: 'wrapper' | 'entrypoint' | 'none';
  command: string | null;
  possible: boolean;
  reason: string;
  /** Set when SageMaker's runtime limit may end the copy before the hold does. */
  runtime_limit?: string;
}

export interface IJob extends IJobSummary {
  /** A description always says these. */
  instance_count: number;
  remote_debug: { enabled: boolean };
  hosts: IHost[];
  network_isolation: boolean;
  vpc: { subnets?: string[]; security_groups?: string[] } | null;
  failure_reason: string | null;
  image?: string | null;
  attach: Record<Transport, IAttachState>;
  /** Whether remote debug can be turned on or off now, and if not, why. */
  remote_debug_change?: IAttachState;
  /** Set while the job's failed containers are held. */
  hold?: IHold | null;
}

/**
 * Which log of a host: the container's output or the SSM agent's.
 */
export type LogStream = 'training' | 'ssm';

/**
 * One line of a host's log.
 */
export interface ILogEvent {
  /** Milliseconds since the epoch. */
  timestamp: number;
  message: string;
}

/**
 * `GET /sm-debug/jobs/{job}/hosts/{host}/logs`.
 */
export interface ILogPage {
  events: ILogEvent[];
  /** Pass back to read on; null while the host has no log yet. */
  next_token: string | null;
  /** The CloudWatch stream read; null while the host has no log yet. */
  stream: string | null;
}

/**
 * `POST /sm-debug/jobs/{job}/hosts/{host}/terminals`.
 */
export interface ITerminalResponse {
  terminal: { name: string };
  transport: Transport;
  target: string;
  reused?: boolean;
}

/**
 * `POST /sm-debug/jobs/{job}/hosts/{host}/kernels`: a Python kernel in the
 * host, registered with the Jupyter server's kernel manager (so JupyterLab's
 * sessions and kernels API use it by `kernel.id`).
 */
export interface IKernelStart {
  kernel: { id: string; name: string };
  transport: Transport;
  target: string;
}

/**
 * Which program runs an SSM session: AWS's session-manager-plugin or the
 * extension's built-in Python client.
 */
export type SSMClient = 'plugin' | 'builtin';

/**
 * The session clients the server found (`GET /sm-debug/environment`).
 */
export interface IClients {
  /** The ssh executable, if any. */
  ssh?: string | null;
  /** The session-manager-plugin executable, if any. */
  session_manager_plugin?: string | null;
  /** What an SSM attach will run; null when none can (plugin required but missing). */
  ssm?: SSMClient | null;
  [key: string]: unknown;
}

/**
 * Something in the environment that keeps the extension from working, with the fix.
 */
export interface IProblem {
  code: string;
  message: string;
  hint: string;
}

/**
 * `GET /sm-debug/environment`.
 */
export interface IEnvironment {
  region: string | null;
  account: string | null;
  endpoint_url?: string | null;
  default_transport?: Transport;
  credentials?: { found: boolean; method: string | null };
  clients: IClients;
  versions: Record<string, unknown>;
  problems: IProblem[];
}

/**
 * The query of `GET /sm-debug/jobs`.
 */
export interface IJobQuery {
  status?: JobStatus | '';
  nameContains?: string;
  maxResults?: number;
  nextToken?: string | null;
  /** False: answer as soon as ListTrainingJobs does (rows may be undescribed). */
  describe?: boolean;
}

/**
 * The longest hold window a debug copy accepts, in seconds (24 hours).
 */
export const MAX_HOLD_SECONDS = 86400;

/**
 * Whether `seconds` is a hold window the server accepts: whole, 0 to 24 hours.
 */
export function isValidHold(seconds: number): boolean {
  return (
    Number.isInteger(seconds) && seconds >= 0 && seconds <= MAX_HOLD_SECONDS
  );
}

/**
 * Whether a job can never change again (its description can be kept for good).
 */
export function isFinished(status: JobStatus): boolean {
  return status === 'Completed' || status === 'Failed' || status === 'Stopped';
}

/*
 * The routes that run something on a job's hosts: stacks, run, host state.
 */

export interface IHostError {
  code: string;
  message: string;
  hint?: string;
}

export interface IStackFrame {
  name: string;
  file: string;
  line: number;
}

export interface IStackGroup {
  headline: string;
  frames: IStackFrame[];
  members: { host: string; pid: number; thread: string }[];
  hosts: string[];
  hosts_text: string;
  count: number;
  outlier: boolean;
}

export interface IHostStacks {
  seconds: number;
  py_spy?: 'container' | 'pushed' | 'cached' | 'missing' | null;
  processes?: { pid: number; command: string; error?: string }[];
  error?: IHostError;
  note?: string;
}

export interface IStacksResponse {
  job: string;
  transport: string;
  hosts: { [host: string]: IHostStacks };
  groups: IStackGroup[];
  outliers: string[];
  text: string;
}

export interface IRunResult {
  exit_code: number | null;
  stdout: string;
  stderr: string;
  /** 'base64' when the bytes were not UTF-8 text (or mostly NULs). */
  stdout_encoding?: 'utf-8' | 'base64';
  stderr_encoding?: 'utf-8' | 'base64';
  timed_out: boolean;
  truncated?: boolean;
  seconds?: number;
  error: IHostError | null;
}

export interface IRunResponse {
  job: string;
  transport: string;
  argv: string[];
  hosts: { [host: string]: IRunResult };
}

/**
 * What to run: an argv as is, or a shell string for `sh -c`.
 */
export type RunCommand = { argv: string[] } | { shell: string };

export interface IGpu {
  index: number;
  name: string;
  utilization_percent: number | null;
  memory_used_mib: number | null;
  memory_total_mib: number | null;
  temperature_c: number | null;
}

export interface IHostState {
  job: string;
  host: string;
  transport: string;
  gpus: IGpu[];
  gpu_note?: string;
  load: number[] | null;
  cpus: number | null;
  memory: { total_bytes: number | null; available_bytes: number | null };
  disk: {
    total_bytes: number;
    used_bytes: number;
    available_bytes: number;
  } | null;
  processes: {
    pid: number;
    user: string;
    cpu_percent: number | null;
    memory_percent: number | null;
    command: string;
  }[];
}

/**
 * A live port forward, as the server lists it.
 */
export interface IForward {
  job: string;
  host: string;
  port: number;
  transport: Transport;
  local_port: number;
  target: string;
  /** The proxy path for the browser, under the server's base URL. */
  url: string;
  created: number;
  reused?: boolean;
}
