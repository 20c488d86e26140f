import { TranslationBundle } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { ISMDebugAPI } from './api';
import { ErrorMessage } from './components/Messages';
import { useSignals } from './components/hooks';
import { HostView, hostViewId, RequestModel } from './hostviews';
import { IRunResponse, IRunResult, Transport } from './types';

// A command, not prose: shown as is in every language.
const EXAMPLE_COMMAND = 'nvidia-smi; df -h /opt/ml';

/**
 * A main-area tab like a parallel shell: one command, typed here, run on
 * every host of a job at once; each host's exit code and output side by side.
 */
export class RunOutputWidget extends HostView {
  constructor(options: RunOutputWidget.IOptions) {
    const { job, trans } = options;
    super(
      options,
      trans.__('Run'),
      trans.__('Run a command on every host of %1', job)
    );
    this._api = options.api;
    this.model = new RequestModel<IRunResponse>(() =>
      Promise.reject(new Error('no command yet'))
    );
    this.id = RunOutputWidget.idFor(job, options.transport);
    this._command = options.draft ?? options.shell ?? '';
    if (options.shell) {
      void this.run(options.shell);
    }
  }

  readonly model: RequestModel<IRunResponse>;

  /**
   * The command last run, offered again (not run) after a reload.
   */
  get restoreArgs(): ReadonlyPartialJSONObject {
    const { job, transport } = this;
    return { job, transport, draft: this._command };
  }

  get restoreArgsChanged(): ISignal<this, void> {
    return this._restoreArgsChanged;
  }

  /**
   * Run `shell` (for `sh -c`) on the job's hosts.
   */
  run(shell: string): Promise<void> {
    this._command = shell;
    this._restoreArgsChanged.emit();
    return this.model.load(() =>
      this._api.runOnHosts(this.job, { shell }, { transport: this.transport })
    );
  }

  render(): JSX.Element {
    return <RunView widget={this} command={this._command} trans={this.trans} />;
  }

  private _api: ISMDebugAPI;
  private _command: string;
  private _restoreArgsChanged = new Signal<this, void>(this);
}

export namespace RunOutputWidget {
  export interface IOptions extends HostView.IOptions {
    /** Run this at once. */
    shell?: string;
    /** Offer this in the command box without running it. */
    draft?: string;
  }

  export function idFor(job: string, transport: Transport): string {
    return hostViewId('run', job, transport);
  }
}

function RunView(props: {
  widget: RunOutputWidget;
  command: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { widget, trans } = props;
  const model = widget.model;
  useSignals(model.changed);
  const [command, setCommand] = React.useState(props.command);
  const result = model.result;
  return (
    <div className="jp-SMDebug-hostViewBody">
      <form
        className="jp-SMDebug-hostViewToolbar"
        onSubmit={event => {
          event.preventDefault();
          if (command.trim()) {
            void widget.run(command);
          }
        }}
      >
        <label className="jp-SMDebug-runLabel">
          {trans.__('Command (sh -c) on every host')}
          <input
            className="jp-SMDebug-runInput jp-mod-styled"
            value={command}
            placeholder={EXAMPLE_COMMAND}
            spellCheck={false}
            onChange={event => setCommand(event.target.value)}
          />
        </label>
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-SMDebug-primaryButton"
          disabled={model.pending || !command.trim()}
          aria-busy={model.pending}
        >
          {model.pending ? trans.__('Running…') : trans.__('Run')}
        </button>
      </form>
      <ErrorMessage error={model.error} trans={trans} />
      {result ? (
        <div className="jp-SMDebug-runHosts">
          {Object.entries(result.hosts).map(([host, one]) => (
            <HostOutput key={host} host={host} result={one} trans={trans} />
          ))}
        </div>
      ) : null}
    </div>
  );
}

/**
 * A stream's text: base64 streams (bytes that are not UTF-8) are decoded with
 * replacement characters, NULs shown as U+2400 so they stay visible but harmless.
 */
export function streamText(text: string, encoding?: string): string {
  if (encoding !== 'base64') {
    return text;
  }
  const binary = atob(text);
  const bytes = Uint8Array.from(binary, c => c.charCodeAt(0));
  return new TextDecoder('utf-8').decode(bytes).replace(/\0/g, '\u2400');
}

function HostOutput(props: {
  host: string;
  result: IRunResult;
  trans: TranslationBundle;
}): JSX.Element {
  const { host, result, trans } = props;
  let status: string;
  if (result.error) {
    status = result.error.message;
  } else if (result.timed_out) {
    status = trans.__('no answer within the timeout');
  } else {
    status = trans.__('exit %1', String(result.exit_code));
  }
  const failed = result.exit_code !== 0;
  return (
    <section
      className={`jp-SMDebug-runHost${failed ? ' jp-mod-failed' : ''}`}
      aria-label={host}
    >
      <header className="jp-SMDebug-runHostHeader">
        <span className="jp-SMDebug-stackHosts">{host}</span>
        <span className="jp-SMDebug-runStatus">{status}</span>
      </header>
      <pre className="jp-SMDebug-runStdout">
        {streamText(result.stdout, result.stdout_encoding)}
      </pre>
      {result.stderr ? (
        <pre className="jp-SMDebug-runStderr">
          {streamText(result.stderr, result.stderr_encoding)}
        </pre>
      ) : null}
      {result.stdout_encoding === 'base64' ||
      result.stderr_encoding === 'base64' ? (
        <p className="jp-SMDebug-empty">
          {trans.__(
            '(output is not UTF-8 text: shown with replacement characters)'
          )}
        </p>
      ) : null}
      {result.truncated ? (
        <p className="jp-SMDebug-empty">{trans.__('(output truncated)')}</p>
      ) : null}
    </section>
  );
}
