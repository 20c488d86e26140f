import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The URL namespace of the jupyter_sm_debug server extension.
 */
export const API_NAMESPACE = 'sm-debug';

/**
 * The error body every `/sm-debug` route answers with when something fails:
 * `{"error": {"code": "...", "message": "...", "hint": "..."}}`.
 */
export interface IErrorBody {
  error: {
    code: string;
    message: string;
    hint?: string | null;
  };
}

/**
 * A failed call to the `/sm-debug` REST API.
 *
 * `status` is the HTTP status (0 when the server could not be reached),
 * `code` a stable machine-readable code from the server (e.g. `ValidationError`,
 * `AccessDenied`), `message` what happened and `hint` what to do about it.
 */
export class SMDebugError extends Error {
  constructor(options: SMDebugError.IOptions) {
    super(options.message);
    this.name = 'SMDebugError';
    this.status = options.status;
    this.code = options.code;
    this.hint = options.hint ?? '';
  }

  /**
   * The HTTP status code; 0 when no answer was received.
   */
  readonly status: number;

  /**
   * The server's error code.
   */
  readonly code: string;

  /**
   * What the user can do about it; may be empty.
   */
  readonly hint: string;

  /**
   * Whether the error is worth retrying later (throttling, unreachable).
   */
  get isTransient(): boolean {
    return (
      this.status === 0 ||
      this.status === 429 ||
      this.status === 502 ||
      this.status === 503 ||
      this.status === 504
    );
  }
}

export namespace SMDebugError {
  export interface IOptions {
    status: number;
    code: string;
    message: string;
    hint?: string | null;
  }

  /**
   * Turn anything thrown into an SMDebugError.
   */
  export function from(reason: unknown): SMDebugError {
    if (reason instanceof SMDebugError) {
      return reason;
    }
    const message =
      reason instanceof Error ? reason.message : String(reason ?? '');
    return new SMDebugError({ status: 0, code: 'UnknownError', message });
  }
}

/**
 * Whether a parsed body has the server's error shape.
 */
function isErrorBody(body: unknown): body is IErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) {
    return false;
  }
  const error = (body as { error: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/**
 * Build the error for a non-2xx answer.
 */
function errorFromResponse(response: Response, body: unknown): SMDebugError {
  if (isErrorBody(body)) {
    return new SMDebugError({
      status: response.status,
      code: body.error.code || `HTTP${response.status}`,
      message: body.error.message,
      hint: body.error.hint
    });
  }
  // Not our shape: Tornado's own pages (404 when the server extension is not
  // loaded, 403 for a missing XSRF token, ...) or Jupyter's `{message, reason}`.
  let message = response.statusText || `HTTP ${response.status}`;
  if (typeof body === 'object' && body !== null && 'message' in body) {
    const text = (body as { message: unknown }).message;
    if (typeof text === 'string' && text) {
      message = text;
    }
  }
  let hint = '';
  if (response.status === 404) {
    hint =
      'Is the jupyter_sm_debug server extension enabled? Check with `jupyter server extension list` and restart JupyterLab.';
  } else if (response.status === 403) {
    hint = 'Reload the page: your Jupyter session may have expired.';
  }
  return new SMDebugError({
    status: response.status,
    code: `HTTP${response.status}`,
    message,
    hint
  });
}

/**
 * Call the jupyter_sm_debug server extension.
 *
 * @param endPoint path under `/sm-debug`, e.g. `jobs?status=InProgress`
 * @param init fetch options (method, body, ...)
 * @param settings server connection settings; the page's by default
 * @returns the parsed JSON body (`undefined` for an empty body)
 * @throws {SMDebugError} for network failures and non-2xx answers
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new SMDebugError({
      status: 0,
      code: 'NetworkError',
      message: `Could not reach the Jupyter server: ${
        reason instanceof Error ? reason.message : String(reason)
      }`,
      hint: 'Check that JupyterLab is still running, then refresh.'
    });
  }

  const text = await response.text();
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }

  if (!response.ok) {
    throw errorFromResponse(response, body);
  }
  if (typeof body === 'string') {
    throw new SMDebugError({
      status: response.status,
      code: 'BadResponse',
      message: 'The server answered with something that is not JSON.',
      hint: 'Check the JupyterLab server log.'
    });
  }
  return body as T;
}
