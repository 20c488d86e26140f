/**
 * The shapes of the routes that run something on a job's hosts (stacks, run,
 * host state); see jupyter_sm_debug/openapi.yaml.
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
