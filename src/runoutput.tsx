import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { ISMDebugAPI } from './api';
import { ErrorMessage } from './components/Messages';
import { useSignals } from './components/hooks';
import { IRunResponse, IRunResult } from './hosttypes';
import { RequestModel } from './hostviews';
import { Transport } from './types';

// A command, not prose: shown as is in every language.
const EXAMPLE_COMMAND = 'nvidia-smi; df -h /opt/ml';

/**
 * A main-area tab like a parallel shell: one command, typed here, run on
 * every host of a job at once; each host's exit code and output side by side.
 */
export class RunOutputWidget extends ReactWidget {
  constructor(options: RunOutputWidget.IOptions) {
    super();
    this._options = options;
    this.model = new RequestModel<IRunResponse>(() =>
      Promise.reject(new Error('no command yet'))
    );
    this.id = `jp-SMDebug-run-${options.job}`;
    this.title.label = options.trans.__('Run: %1', options.job);
    this.title.caption = options.trans.__(
      'Run a command on every host of %1',
      options.job
    );
    this.title.closable = true;
    this.addClass('jp-SMDebug-hostView');
    if (options.shell) {
      void this.run(options.shell);
    }
  }

  readonly model: RequestModel<IRunResponse>;

  /**
   * Run `shell` (for `sh -c`) on the job's hosts.
   */
  run(shell: string): Promise<void> {
    const { api, job, transport } = this._options;
    this._command = shell;
    return this.model.load(() => api.runOnHosts(job, { shell }, { transport }));
  }

  render(): JSX.Element {
    return (
      <RunView
        widget={this}
        command={this._command}
        trans={this._options.trans}
      />
    );
  }

  private _options: RunOutputWidget.IOptions;
  private _command = '';
}

export namespace RunOutputWidget {
  export interface IOptions {
    api: ISMDebugAPI;
    job: string;
    transport: Transport;
    trans: TranslationBundle;
    shell?: string;
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
      {model.error ? <ErrorMessage error={model.error} trans={trans} /> : null}
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
      <pre className="jp-SMDebug-runStdout">{result.stdout}</pre>
      {result.stderr ? (
        <pre className="jp-SMDebug-runStderr">{result.stderr}</pre>
      ) : null}
      {result.truncated ? (
        <p className="jp-SMDebug-empty">{trans.__('(output truncated)')}</p>
      ) : null}
    </section>
  );
}
