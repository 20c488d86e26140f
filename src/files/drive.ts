import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { API_NAMESPACE } from '../request';
import { Transport } from '../types';
import {
  containerPath,
  driveName,
  filesEndpoint,
  filesQuery,
  IHostRef,
  mimeTypeOf,
  splitPath
} from './names';

/**
 * A file or directory as the files routes answer it (a Jupyter Contents
 * model); every field is checked before use, since names and sizes come
 * from the container.
 */
interface IServerModel {
  name?: unknown;
  type?: unknown;
  size?: unknown;
  last_modified?: unknown;
  created?: unknown;
  writable?: unknown;
  format?: unknown;
  content?: unknown;
  truncated?: unknown;
  hash?: unknown;
  hash_algorithm?: unknown;
}

/**
 * A failed files request: a Jupyter `ResponseError` (JupyterLab reads its
 * `response.status`, e.g. 404 when a save creates a file) that also carries
 * the server's error code and hint; its message holds both, so JupyterLab's
 * own error dialogs say what to do.
 */
export class FilesError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    readonly code: string,
    message: string,
    readonly hint: string = ''
  ) {
    super(response, hint ? `${message} ${hint}` : message);
    this.name = 'FilesError';
  }

  /** The HTTP status (JupyterLab's errors carry it in `response`). */
  get status(): number {
    return this.response.status;
  }
}

/**
 * Why a file was not loaded into the browser.
 */
export type Refusal = 'too_large' | 'binary';

export interface IRefused {
  /** The drive-local path. */
  path: string;
  reason: Refusal;
  error: FilesError;
}

/**
 * What the drive remembers of a file's content: for checkpoints and for the
 * one load handed over from an open's probe to the document it opens.
 */
interface IKnown {
  content: string;
  format: 'text' | 'base64';
}

/** Contents kept for checkpoints, all files together, in characters. */
const CHECKPOINT_BUDGET = 16 * 1024 * 1024;
/** A probe's answer waits this long for the document's own load. */
const HANDOFF_MS = 30 * 1000;

/**
 * A host's filesystem as a JupyterLab drive, backed by the
 * `/sm-debug/jobs/{job}/hosts/{host}/files/{path}` routes. Its local paths
 * are paths from the container's `/` without the leading slash
 * (`opt/ml/code/train.py`).
 *
 * Checkpoints live in this page only: a checkpoint is the content the drive
 * last loaded or saved for the file (JupyterLab's "Revert to Checkpoint"
 * writes it back); they are gone after a reload.
 */
export class HostDrive implements Contents.IDrive {
  constructor(options: HostDrive.IOptions) {
    this.ref = { job: options.job, host: options.host };
    this.name = driveName(options.job, options.host);
    this.transport = options.transport ?? null;
    this.serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
  }

  readonly name: string;
  readonly ref: IHostRef;
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * How the drive's requests reach the host; the server's default when null.
   * The last Files action on the host sets it.
   */
  transport: Transport | null;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  /**
   * A file the browser was not given: over the server's size limit, or
   * binary where text was asked for.
   */
  get refused(): ISignal<this, IRefused> {
    return this._refused;
  }

  /**
   * A directory whose listing the server cut (at 20,000 entries): the
   * browser shows only those.
   */
  get truncated(): ISignal<this, string> {
    return this._truncated;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._known.clear();
    this._checkpoints.clear();
    this._handoff.clear();
    Signal.clearData(this);
  }

  /**
   * The path of a drive-local path inside the container (`/opt/ml/x`).
   */
  containerPath(localPath: string): string {
    return containerPath(localPath);
  }

  async get(
    localPath: string,
    options: Contents.IFetchOptions = {}
  ): Promise<Contents.IModel> {
    const path = splitPath(localPath).join('/');
    const wanted = options.format === 'text' || options.format === 'base64';
    const key = `${path}\n${options.format ?? ''}`;
    const handed = this._handoff.get(key);
    if (handed && options.content) {
      this._handoff.delete(key);
      if (Date.now() - handed.at < HANDOFF_MS) {
        return handed.model;
      }
    }
    if (options.format === 'json') {
      throw this._localError(
        400,
        'unsupported_format',
        `${containerPath(path)} cannot be opened as a notebook here.`,
        'Open it with the Editor.'
      );
    }
    const params: Record<string, string> = {};
    if (options.hash) {
      params.hash = '1';
    }
    params.content = options.content ? '1' : '0';
    if (options.content && wanted) {
      params.format = options.format as string;
    }
    let raw: IServerModel;
    try {
      raw = await this._request<IServerModel>(path, 'GET', params);
    } catch (error) {
      if (error instanceof FilesError && error.code === 'file_too_large') {
        this._refused.emit({ path, reason: 'too_large', error });
      } else if (error instanceof FilesError && error.code === 'not_text') {
        this._refused.emit({ path, reason: 'binary', error });
      }
      throw error;
    }
    const model = this._toModel(raw, path, true);
    if (
      model.type === 'directory' &&
      model.content &&
      raw?.truncated === true
    ) {
      this._truncated.emit(path);
    }
    if (model.type === 'file' && options.content && wanted) {
      if (options.format === 'text' && model.format === 'base64') {
        const error = this._localError(
          415,
          'binary_file',
          `${containerPath(path)} is not text (it is not UTF-8).`,
          'Download it, or open it with a viewer for its type.'
        );
        this._refused.emit({ path, reason: 'binary', error });
        throw error;
      }
      if (options.format === 'base64' && model.format === 'text') {
        return this._remember(path, {
          ...model,
          format: 'base64',
          content: textToBase64(model.content as string),
          mimetype: mimeTypeOf(model.name, 'base64')
        });
      }
    }
    return model.type === 'file' && model.content !== null
      ? this._remember(path, model)
      : model;
  }

  /**
   * Load a file as `get` does and keep the answer for the next `get` of the
   * same path and format (the document an open is about to create), so a
   * file is checked (size, text) before a tab opens for it and loaded once.
   */
  async probe(
    localPath: string,
    options: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const path = splitPath(localPath).join('/');
    const model = await this.get(path, { ...options, content: true });
    this._handoff.set(`${path}\n${options.format ?? ''}`, {
      model,
      at: Date.now()
    });
    return model;
  }

  /**
   * The `?download=1` URL of a file: streamed by the server as an
   * attachment. With the page's XSRF token, as JupyterLab's own download
   * URLs have it.
   */
  async getDownloadUrl(localPath: string): Promise<string> {
    const url = new URL(
      this._url(splitPath(localPath).join('/'), { download: '1' }),
      window.location.href
    );
    let cookie = '';
    try {
      cookie = document.cookie;
    } catch {
      // e.g. a sandboxed document
    }
    const xsrf = cookie.match('\\b_xsrf=([^;]*)\\b');
    if (xsrf) {
      url.searchParams.append('_xsrf', xsrf[1]);
    }
    return url.toString();
  }

  async newUntitled(
    options: Contents.ICreateOptions = {}
  ): Promise<Contents.IModel> {
    const type = options.type === 'directory' ? 'directory' : 'file';
    if (
      options.type &&
      options.type !== 'directory' &&
      options.type !== 'file'
    ) {
      throw this._localError(
        400,
        'unsupported_type',
        `A new ${options.type} cannot be made in a container.`,
        'Make a file or a folder.'
      );
    }
    const dir = splitPath(options.path ?? '').join('/');
    const body: Record<string, string> = { type };
    if (type === 'file') {
      body.ext = options.ext ?? '.txt';
    }
    const raw = await this._request<IServerModel>(dir, 'POST', {}, body);
    const model = this._toModel(raw, this._pathOf(raw, dir), false);
    this._fileChanged.emit({ type: 'new', oldValue: null, newValue: model });
    return model;
  }

  async delete(localPath: string): Promise<void> {
    const path = splitPath(localPath).join('/');
    await this._request<unknown>(path, 'DELETE');
    this._forget(path);
    this._fileChanged.emit({
      type: 'delete',
      oldValue: { path },
      newValue: null
    });
  }

  async rename(
    oldLocalPath: string,
    newLocalPath: string
  ): Promise<Contents.IModel> {
    const from = splitPath(oldLocalPath).join('/');
    const to = splitPath(newLocalPath).join('/');
    const raw = await this._request<IServerModel>(
      from,
      'PATCH',
      {},
      { path: to }
    );
    const model = this._toModel(raw, to, false);
    const known = this._known.get(from);
    const checkpoint = this._checkpoints.get(from);
    this._forget(from);
    if (known) {
      this._known.set(to, known);
    }
    if (checkpoint) {
      this._checkpoints.set(to, checkpoint);
    }
    this._fileChanged.emit({
      type: 'rename',
      oldValue: { path: from },
      newValue: model
    });
    return model;
  }

  async save(
    localPath: string,
    options: Partial<Contents.IModel> = {}
  ): Promise<Contents.IModel> {
    const path = splitPath(localPath).join('/');
    if (!path) {
      throw this._localError(400, 'bad_path', 'Cannot write over /.', '');
    }
    let body: Record<string, unknown>;
    if (options.type === 'directory') {
      body = { type: 'directory' };
    } else if (options.format === 'text' || options.format === 'base64') {
      body = {
        type: 'file',
        format: options.format,
        content: typeof options.content === 'string' ? options.content : ''
      };
      if (typeof options.chunk === 'number') {
        body.chunk = options.chunk;
      }
    } else {
      throw this._localError(
        400,
        'unsupported_format',
        `${containerPath(path)} can only be saved as text or base64.`,
        'Save it from the Editor.'
      );
    }
    const raw = await this._request<IServerModel>(path, 'PUT', {}, body);
    const model = this._toModel(raw, path, false);
    const partial = typeof options.chunk === 'number' && options.chunk !== -1;
    if (body.type === 'file' && options.chunk === undefined) {
      this._remember(path, {
        ...model,
        format: body.format as 'text' | 'base64',
        content: body.content
      });
    } else if (body.type === 'file') {
      this._forget(path);
    }
    if (!partial) {
      this._fileChanged.emit({ type: 'save', oldValue: null, newValue: model });
    }
    return model;
  }

  /**
   * Copy a file into a directory of the same host, as `<name>-Copy1.<ext>`
   * (done by the server, streamed).
   */
  async copy(localPath: string, toLocalDir: string): Promise<Contents.IModel> {
    const from = splitPath(localPath).join('/');
    const dir = splitPath(toLocalDir).join('/');
    const raw = await this._request<IServerModel>(
      dir,
      'POST',
      {},
      { copy_from: from }
    );
    const model = this._toModel(raw, this._pathOf(raw, dir), false);
    this._fileChanged.emit({ type: 'new', oldValue: null, newValue: model });
    return model;
  }

  async createCheckpoint(
    localPath: string
  ): Promise<Contents.ICheckpointModel> {
    const path = splitPath(localPath).join('/');
    let known = this._known.get(path);
    if (!known) {
      await this.get(path, { content: true });
      known = this._known.get(path);
    }
    if (!known) {
      throw this._localError(
        413,
        'checkpoint_too_large',
        `${containerPath(path)} is too large to keep a checkpoint of in the page.`,
        ''
      );
    }
    const checkpoint = {
      ...known,
      id: 'page',
      last_modified: new Date().toISOString()
    };
    this._checkpoints.delete(path);
    this._checkpoints.set(path, checkpoint);
    this._trim();
    return { id: checkpoint.id, last_modified: checkpoint.last_modified };
  }

  async listCheckpoints(
    localPath: string
  ): Promise<Contents.ICheckpointModel[]> {
    const checkpoint = this._checkpoints.get(splitPath(localPath).join('/'));
    return checkpoint
      ? [{ id: checkpoint.id, last_modified: checkpoint.last_modified }]
      : [];
  }

  async restoreCheckpoint(
    localPath: string,
    checkpointID: string
  ): Promise<void> {
    const path = splitPath(localPath).join('/');
    const checkpoint = this._checkpoints.get(path);
    if (!checkpoint || checkpoint.id !== checkpointID) {
      throw this._localError(
        404,
        'no_checkpoint',
        `No checkpoint of ${containerPath(path)} in this page.`,
        ''
      );
    }
    await this.save(path, {
      type: 'file',
      format: checkpoint.format,
      content: checkpoint.content
    });
  }

  async deleteCheckpoint(
    localPath: string,
    checkpointID: string
  ): Promise<void> {
    const path = splitPath(localPath).join('/');
    if (this._checkpoints.get(path)?.id === checkpointID) {
      this._checkpoints.delete(path);
    }
  }

  /**
   * A files URL: the route of `path` with the drive's transport and `params`.
   */
  private _url(path: string, params: Record<string, string> = {}): string {
    return (
      URLExt.join(this.serverSettings.baseUrl, API_NAMESPACE) +
      '/' +
      filesEndpoint(this.ref, path) +
      filesQuery(this.transport, params)
    );
  }

  private async _request<T>(
    path: string,
    method: string,
    params: Record<string, string> = {},
    body?: unknown
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this._url(path, params),
        init,
        this.serverSettings
      );
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    let data: unknown = undefined;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!response.ok) {
      const error = (data as { error?: Record<string, unknown> } | undefined)
        ?.error;
      const code =
        typeof error?.code === 'string' ? error.code : `HTTP${response.status}`;
      const message =
        typeof error?.message === 'string'
          ? error.message
          : `${method} ${containerPath(path)} failed: HTTP ${response.status} ${response.statusText}`;
      const hint = typeof error?.hint === 'string' ? error.hint : '';
      throw new FilesError(response, code, message, hint);
    }
    return data as T;
  }

  private _localError(
    status: number,
    code: string,
    message: string,
    hint: string
  ): FilesError {
    return new FilesError(new Response(null, { status }), code, message, hint);
  }

  /**
   * A Contents model of `path` from the server's answer. Paths are the
   * drive's own (the request's path, a listed name joined to it): a name that
   * could leave its directory (empty, ".", "..", holding "/") is dropped.
   */
  private _toModel(
    raw: IServerModel,
    path: string,
    withContent: boolean
  ): Contents.IModel {
    const type = raw?.type === 'directory' ? 'directory' : 'file';
    const name = PathExt.basename(path);
    const lastModified = isoDate(raw?.last_modified);
    const writable = raw?.writable !== false;
    const size = typeof raw?.size === 'number' ? raw.size : undefined;
    if (type === 'directory') {
      const entries = Array.isArray(raw?.content) ? raw.content : null;
      const content =
        withContent && entries
          ? entries
              .filter(
                (entry: IServerModel) =>
                  typeof entry?.name === 'string' && isPlainName(entry.name)
              )
              .map((entry: IServerModel) =>
                this._toModel(
                  { ...entry, content: undefined },
                  PathExt.join(path, entry.name as string),
                  false
                )
              )
          : null;
      return {
        name,
        path,
        type,
        writable,
        created: isoDate(raw?.created) || lastModified,
        last_modified: lastModified,
        mimetype: '',
        content,
        format: content ? 'json' : null,
        size
      };
    }
    const format =
      raw?.format === 'text' || raw?.format === 'base64' ? raw.format : null;
    const content =
      withContent && format && typeof raw?.content === 'string'
        ? raw.content
        : null;
    return {
      name,
      path,
      type,
      writable,
      created: isoDate(raw?.created) || lastModified,
      last_modified: lastModified,
      mimetype: mimeTypeOf(name, format ?? 'text'),
      content,
      format: content !== null ? format : null,
      size,
      ...(typeof raw?.hash === 'string' &&
      typeof raw?.hash_algorithm === 'string'
        ? { hash: raw.hash, hash_algorithm: raw.hash_algorithm }
        : {})
    };
  }

  /**
   * The drive path of an entry the server made in `dir` (a new or copied
   * file), from its name; refused when the name could leave `dir`.
   */
  private _pathOf(raw: IServerModel, dir: string): string {
    if (typeof raw?.name !== 'string' || !isPlainName(raw.name)) {
      throw this._localError(
        502,
        'bad_answer',
        `The server named the new entry in ${containerPath(dir)} oddly.`,
        'Refresh the file browser.'
      );
    }
    return PathExt.join(dir, raw.name);
  }

  private _remember(path: string, model: Contents.IModel): Contents.IModel {
    if (
      typeof model.content === 'string' &&
      (model.format === 'text' || model.format === 'base64') &&
      model.content.length <= CHECKPOINT_BUDGET / 8
    ) {
      this._known.delete(path);
      this._known.set(path, { content: model.content, format: model.format });
      this._trim();
    } else {
      this._known.delete(path);
    }
    return model;
  }

  private _forget(path: string): void {
    this._known.delete(path);
    this._checkpoints.delete(path);
    for (const key of this._handoff.keys()) {
      if (key.startsWith(`${path}\n`)) {
        this._handoff.delete(key);
      }
    }
  }

  /**
   * Keep what is remembered within the budget, the oldest going first.
   */
  private _trim(): void {
    const total = () => {
      let sum = 0;
      for (const map of [this._known, this._checkpoints]) {
        for (const value of map.values()) {
          sum += value.content.length;
        }
      }
      return sum;
    };
    while (total() > CHECKPOINT_BUDGET) {
      const oldest = this._known.keys().next();
      if (!oldest.done) {
        this._known.delete(oldest.value);
        continue;
      }
      const checkpoint = this._checkpoints.keys().next();
      if (checkpoint.done) {
        break;
      }
      this._checkpoints.delete(checkpoint.value);
    }
  }

  private _isDisposed = false;
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _refused = new Signal<this, IRefused>(this);
  private _truncated = new Signal<this, string>(this);
  private _known = new Map<string, IKnown>();
  private _checkpoints = new Map<
    string,
    IKnown & { id: string; last_modified: string }
  >();
  private _handoff = new Map<string, { model: Contents.IModel; at: number }>();
}

export namespace HostDrive {
  export interface IOptions {
    job: string;
    host: string;
    transport?: Transport | null;
    serverSettings?: ServerConnection.ISettings;
  }
}

/**
 * A listed name that stays in its directory.
 */
function isPlainName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0')
  );
}

/**
 * An ISO date from the server's (a string, or seconds since the epoch); ""
 * when there is none.
 */
function isoDate(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    return new Date(value * 1000).toISOString();
  }
  return '';
}

/**
 * Base64 of a string's UTF-8 bytes.
 */
export function textToBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
