import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { ActionStates, IActionState } from '../actions';
import { ISMDebugAPI } from '../api';
import { SMDebugError } from '../request';
import { IKernelStart, Transport } from '../types';

/**
 * What a kernel on a host is for: a new notebook, the current notebook
 * switched to it, or a console.
 */
export type KernelUse = 'notebook' | 'switch' | 'console';

/**
 * A notebook whose kernel can be changed: the current one when "switch" was
 * asked for, kept so that focusing another notebook meanwhile changes nothing.
 */
export interface ISwitchableNotebook {
  /** Its path, for messages. */
  readonly path: string;
  changeKernel(kernel: { id: string; name: string }): Promise<unknown>;
}

/**
 * How JupyterLab opens what a kernel is for; `labOpener` is the real one.
 * Each throws when it cannot.
 */
export interface IKernelOpener {
  /** A new notebook on the kernel; returns its widget. */
  notebook(start: IKernelStart): Promise<unknown>;
  /** A console on the kernel, titled `title`; returns its widget. */
  console(start: IKernelStart, title: string): Promise<unknown>;
  /** The notebook "switch" would change now; null when none is current. */
  currentNotebook(): ISwitchableNotebook | null;
  /** Shut a kernel down (one that started but could not be opened). */
  shutdown(kernelId: string): Promise<void>;
}

/**
 * What one open on a host asked for (the pending state the row shows).
 */
export interface IKernelRequest {
  use: KernelUse;
  transport: Transport;
}

/**
 * What an open answered: the server's kernel, and what was opened on it.
 */
export interface IKernelOpened {
  start: IKernelStart;
  use: KernelUse;
  /** The notebook or console widget (what the opener returned). */
  widget: unknown;
}

/**
 * The kernels on hosts as the panel and the commands see them: where the
 * last open on each host stands, and how to open one.
 */
export interface IHostKernels {
  readonly changed: ISignal<IHostKernels, void>;
  state(job: string, host: string): IActionState<IKernelRequest, IKernelOpened>;
  open(
    use: KernelUse,
    job: string,
    host: string,
    transport: Transport
  ): Promise<IKernelOpened | null>;
  clearError(job: string, host: string): void;
}

/**
 * The title of a console on a host's kernel: the kernel's own display name,
 * so the tab and the kernel indicator say the same (and a console never
 * passes for the host's terminal, titled `host · job`).
 */
export function kernelTitle(
  trans: TranslationBundle,
  job: string,
  host: string
): string {
  return trans.__('Python on %1 · %2', host, job);
}

/**
 * Starts Python kernels in hosts (`POST .../kernels`) and opens a notebook or
 * console on them, one request at a time per host, its progress and refusal
 * kept per host for the panel's row (`ActionStates`).
 *
 * A kernel that started but could not be opened is shut down again: nothing
 * would show it, and an open kernel keeps a held container held.
 */
export class KernelLauncher implements IHostKernels {
  constructor(options: KernelLauncher.IOptions) {
    this._api = options.api;
    this._opener = options.opener;
    this._trans = options.trans;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Where the last open on a host stands.
   */
  state(
    job: string,
    host: string
  ): IActionState<IKernelRequest, IKernelOpened> {
    return this._states.get(KernelLauncher.key(job, host));
  }

  /**
   * Start a kernel in `host` of `job` over `transport` and open it for `use`.
   *
   * @returns what was opened; null when it failed (the reason is in
   * `state(job, host).error`) or an open on this host is already under way.
   */
  open(
    use: KernelUse,
    job: string,
    host: string,
    transport: Transport
  ): Promise<IKernelOpened | null> {
    return this._states.run(
      KernelLauncher.key(job, host),
      { use, transport },
      async () => {
        // The notebook to switch is the one current when asked, before the
        // kernel starts (seconds later the user may be elsewhere).
        const notebook = use === 'switch' ? this._switchable() : null;
        const start = await this._api.startKernel(job, host, transport);
        let widget: unknown;
        try {
          widget = await this._openOn(use, start, job, host, notebook);
        } catch (reason) {
          await this._opener.shutdown(start.kernel.id).catch(() => undefined);
          throw this._openError(use, reason);
        }
        return { start, use, widget };
      }
    );
  }

  /**
   * Forget a host's refusal (the user dismissed it).
   */
  clearError(job: string, host: string): void {
    this._states.clearError(KernelLauncher.key(job, host));
  }

  private _switchable(): ISwitchableNotebook {
    const notebook = this._opener.currentNotebook();
    if (!notebook) {
      throw new SMDebugError({
        status: 0,
        code: 'no_notebook',
        message: this._trans.__('No notebook is open to switch.'),
        hint: this._trans.__(
          'Select a notebook tab first, or use Notebook for a new one.'
        )
      });
    }
    return notebook;
  }

  private _openOn(
    use: KernelUse,
    start: IKernelStart,
    job: string,
    host: string,
    notebook: ISwitchableNotebook | null
  ): Promise<unknown> {
    switch (use) {
      case 'notebook':
        return this._opener.notebook(start);
      case 'console':
        return this._opener.console(start, kernelTitle(this._trans, job, host));
      case 'switch':
        return notebook!.changeKernel(start.kernel);
    }
  }

  private _openError(use: KernelUse, reason: unknown): SMDebugError {
    const cause = SMDebugError.from(reason);
    const what = {
      notebook: this._trans.__('The kernel started, but no notebook opened.'),
      console: this._trans.__('The kernel started, but no console opened.'),
      switch: this._trans.__(
        'The kernel started, but the notebook could not switch to it.'
      )
    }[use];
    return new SMDebugError({
      status: cause.status,
      code: cause.code,
      message: cause.message ? `${what} ${cause.message}` : what,
      hint:
        cause.hint ||
        this._trans.__('The kernel was shut down again. Try again.')
    });
  }

  private _api: Pick<ISMDebugAPI, 'startKernel'>;
  private _opener: IKernelOpener;
  private _trans: TranslationBundle;
  private _changed = new Signal<this, void>(this);
  private _states = new ActionStates<IKernelRequest, IKernelOpened>(() =>
    this._changed.emit()
  );
}

export namespace KernelLauncher {
  export interface IOptions {
    api: Pick<ISMDebugAPI, 'startKernel'>;
    opener: IKernelOpener;
    trans: TranslationBundle;
  }

  /**
   * The state key of a host: job names have no '/'.
   */
  export function key(job: string, host: string): string {
    return `${job}/${host}`;
  }
}
