import { Clipboard } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { copyIcon, refreshIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import * as React from 'react';

import { ErrorMessage } from './components/Messages';
import { useSignals } from './components/hooks';
import { HostView, hostViewId, RequestModel } from './hostviews';
import { IStackGroup, IStacksResponse, Transport } from './types';

/**
 * A main-area tab with the Python stacks of every host of a job: identical
 * stacks grouped across hosts, the outlier first and highlighted.
 */
export class StacksWidget extends HostView {
  constructor(options: StacksWidget.IOptions) {
    const { api, job, hosts, transport, trans } = options;
    super(
      options,
      trans.__('Stacks'),
      trans.__('Python stacks of the hosts of %1', job)
    );
    this._hosts = hosts;
    this.model = new RequestModel(() =>
      api.stacks(job, { ...(hosts ? { hosts } : {}), transport })
    );
    this.id = StacksWidget.idFor(job, transport, hosts);
    void this.model.load();
  }

  readonly model: RequestModel<IStacksResponse>;

  get restoreArgs(): ReadonlyPartialJSONObject {
    const { job, transport } = this;
    return this._hosts
      ? { job, transport, hosts: this._hosts }
      : { job, transport };
  }

  render(): JSX.Element {
    return <StacksView model={this.model} job={this.job} trans={this.trans} />;
  }

  private _hosts: string[] | undefined;
}

export namespace StacksWidget {
  export interface IOptions extends HostView.IOptions {
    hosts?: string[];
  }

  export function idFor(
    job: string,
    transport: Transport,
    hosts?: readonly string[]
  ): string {
    return hostViewId('stacks', job, transport, hosts);
  }
}

function StacksView(props: {
  model: RequestModel<IStacksResponse>;
  job: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, job, trans } = props;
  useSignals(model.changed);
  const result = model.result;
  const retry = () => void model.load();
  return (
    <div className="jp-SMDebug-hostViewBody">
      <div className="jp-SMDebug-hostViewToolbar">
        <h2 className="jp-SMDebug-hostViewTitle">
          {trans.__('Python stacks of %1', job)}
        </h2>
        <button
          type="button"
          className="jp-SMDebug-secondaryButton"
          onClick={retry}
          aria-busy={model.pending}
          disabled={model.pending}
        >
          <refreshIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
          {model.pending ? trans.__('Dumping…') : trans.__('Dump again')}
        </button>
        <button
          type="button"
          className="jp-SMDebug-secondaryButton"
          disabled={!result}
          onClick={() => result && Clipboard.copyToSystem(result.text)}
        >
          <copyIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
          {trans.__('Copy as text')}
        </button>
      </div>
      <ErrorMessage error={model.error} trans={trans} onRetry={retry} />
      {!result && model.pending ? (
        <p className="jp-SMDebug-empty" role="status">
          {trans.__('Reading the stacks of every host…')}
        </p>
      ) : null}
      {result ? <StacksResult result={result} trans={trans} /> : null}
    </div>
  );
}

function StacksResult(props: {
  result: IStacksResponse;
  trans: TranslationBundle;
}): JSX.Element {
  const { result, trans } = props;
  const failed = Object.entries(result.hosts).filter(([, h]) => h.error);
  const pushed = Object.entries(result.hosts)
    .filter(([, h]) => h.py_spy === 'pushed')
    .map(([host]) => host);
  return (
    <>
      <p className="jp-SMDebug-stacksSummary" role="status">
        {result.outliers.length
          ? trans.__('Stands apart: %1', result.outliers.join('; '))
          : trans.__('No host stands apart.')}
        {pushed.length
          ? ' ' + trans.__('(py-spy was sent to %1)', pushed.join(', '))
          : ''}
      </p>
      {failed.map(([host, h]) => (
        <div
          key={host}
          className="jp-SMDebug-message jp-mod-error"
          role="alert"
          data-host={host}
        >
          <div className="jp-SMDebug-messageText">
            {host}: {h.error?.message}
          </div>
          {h.error?.hint ? (
            <div className="jp-SMDebug-messageHint">{h.error.hint}</div>
          ) : null}
        </div>
      ))}
      <ul className="jp-SMDebug-stackGroups" aria-label={trans.__('Stacks')}>
        {result.groups.map((group, i) => (
          <StackGroup key={i} group={group} trans={trans} />
        ))}
      </ul>
    </>
  );
}

function StackGroup(props: {
  group: IStackGroup;
  trans: TranslationBundle;
}): JSX.Element {
  const { group, trans } = props;
  const [open, setOpen] = React.useState(group.outlier);
  return (
    <li
      className={`jp-SMDebug-stackGroup${group.outlier ? ' jp-mod-outlier' : ''}`}
      data-outlier={group.outlier ? 'true' : 'false'}
      aria-label={`${group.hosts_text}: ${group.headline}`}
    >
      <button
        type="button"
        className="jp-SMDebug-stackGroupHeader"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <span className="jp-SMDebug-stackHosts">{group.hosts_text}</span>
        <span className="jp-SMDebug-stackCount">
          {trans._n('%1 thread', '%1 threads', group.count)}
        </span>
        <span className="jp-SMDebug-stackHeadline">{group.headline}</span>
        {group.outlier ? (
          <span className="jp-SMDebug-outlierBadge">{trans.__('outlier')}</span>
        ) : null}
      </button>
      {open ? (
        <ol className="jp-SMDebug-stackFrames">
          {group.frames.map((frame, i) => (
            <li key={i}>
              <code>
                {frame.name} ({frame.file}:{frame.line})
              </code>
            </li>
          ))}
        </ol>
      ) : null}
    </li>
  );
}
