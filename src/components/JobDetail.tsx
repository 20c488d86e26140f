import { TranslationBundle } from '@jupyterlab/translation';
import { bugIcon, stopIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { AttachManager } from '../attach';
import type { IHostKernels } from '../kernels/launcher';
import { formatDuration } from '../dialogs';
import { holdLabel } from '../format';
import { JobsModel } from '../model';
import { IJob, IJobSummary, isFinished, Transport } from '../types';
import { AllHostsView } from './AllHosts';
import { Hosts, isolationNoteId } from './Hosts';
import { ErrorMessage } from './Messages';

/**
 * What the panel's buttons do beyond the model: the flows with dialogs, which
 * are commands.
 */
export interface IJobActions {
  /** Ask for the hold window, then start a debug copy of the job. */
  debugCopy(job: string): void;
  /** Ask, then stop the job. */
  stopJob(job: string): void;
  /** Open the tab with a host's log. */
  openLogs(job: string, host: string): void;
  /** Open a tab that looks inside every host (or `hosts`) of the job. */
  allHosts?(
    job: string,
    view: AllHostsView,
    options: { transport: Transport; hosts?: string[] }
  ): void;
  /** Ask for a port, then show that port of the host in a tab. */
  openPort?(job: string, host: string, transport: Transport): void;
  /** Open a file browser tab on the host's files. */
  openFiles?(job: string, host: string, transport: Transport): void;
  /** Notebooks and consoles whose Python runs in a host, and their state. */
  kernels?: IHostKernels;
}

export interface IJobDetailProps {
  job: IJobSummary;
  model: JobsModel;
  attach: AttachManager;
  actions: IJobActions;
  trans: TranslationBundle;
}

/**
 * An expanded job: failure reason, Debug a copy, remote-debug switch, hosts
 * with Attach.
 */
export function JobDetail(props: IJobDetailProps): JSX.Element {
  const { job, model, actions, trans } = props;
  const state = model.detail(job.name);
  const detail = state?.job ?? null;

  if (!detail) {
    if (state?.error) {
      return (
        <ErrorMessage
          error={state.error}
          trans={trans}
          onRetry={() => void model.loadDetail(job.name, true)}
        />
      );
    }
    return (
      <p className="jp-SMDebug-empty" role="status">
        {trans.__('Loading job details…')}
      </p>
    );
  }

  // What the job's parts all need.
  const common = { detail, model, actions, trans };
  return (
    <div className="jp-SMDebug-detail">
      <ErrorMessage
        error={state?.error}
        trans={trans}
        onRetry={() => void model.loadDetail(job.name, true)}
      />
      {detail.hold ? <HeldJob {...common} /> : null}
      {detail.network_isolation ? (
        <div
          id={isolationNoteId(detail.name)}
          className="jp-SMDebug-note"
          role="note"
        >
          {trans.__(
            'This job runs with network isolation: SageMaker allows no remote debug and no remote access to its containers.'
          )}
        </div>
      ) : null}
      {detail.failure_reason ? (
        <div className="jp-SMDebug-failure">
          <span className="jp-SMDebug-label">{trans.__('Failure reason')}</span>
          <span className="jp-SMDebug-failureText">
            {detail.failure_reason}
          </span>
        </div>
      ) : null}
      {isFinished(detail.status) ? <DebugCopy {...common} /> : null}
      <RemoteDebugSwitch detail={detail} model={model} trans={trans} />
      <Hosts
        detail={detail}
        model={model}
        attach={props.attach}
        actions={actions}
        trans={trans}
      />
      {detail.status === 'InProgress' || detail.status === 'Stopping' ? (
        <div className="jp-SMDebug-secondaryActions">
          <DebugCopy {...common} secondary />
          {detail.hold ? null : <StopButton {...common} secondary />}
        </div>
      ) : null}
      <StopError detail={detail} model={model} trans={trans} />
    </div>
  );
}

/**
 * A job whose training command failed and whose containers
 * sm-debug-entrypoint keeps up: for how long, the failure's last lines, Stop.
 */
function HeldJob(props: {
  detail: IJob;
  model: JobsModel;
  actions: IJobActions;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { detail, trans } = props;
  const hold = detail.hold;
  if (!hold) {
    return null;
  }
  return (
    <div className="jp-SMDebug-held" role="status">
      <div className="jp-SMDebug-heldTitle">{holdLabel(trans, hold)}</div>
      <div className="jp-SMDebug-heldHint">
        {trans.__(
          'The training command failed; %1 stay up until %2 so you can attach and look around.',
          hold.hosts.join(', '),
          new Date(hold.until).toLocaleTimeString()
        )}
      </div>
      {hold.limited_by === 'runtime' ? (
        <div className="jp-SMDebug-heldHint jp-SMDebug-heldRuntime">
          {trans.__(
            "SageMaker's runtime limit for this job (MaxRuntimeInSeconds) comes before the hold window's end: the job is stopped then."
          )}
        </div>
      ) : null}
      <div className="jp-SMDebug-heldHint jp-SMDebug-heldEnds">
        {trans.__(
          'The hold ends then, when you release it (sm-debug-entrypoint --release), or when the last shell you opened on a host closes. Host state, Stacks, Run and port forwards never end it.'
        )}
      </div>
      {hold.last_lines.length > 0 ? (
        <pre
          className="jp-SMDebug-heldLines"
          aria-label={trans.__('The last lines before the failure')}
        >
          {hold.last_lines.join('\n')}
        </pre>
      ) : null}
      <StopButton {...props} />
    </div>
  );
}

/**
 * Stop job: asks first (a command with a dialog).
 */
function StopButton(props: {
  detail: IJob;
  model: JobsModel;
  actions: IJobActions;
  trans: TranslationBundle;
  secondary?: boolean;
}): JSX.Element | null {
  const { detail, model, actions, trans, secondary } = props;
  if (detail.status !== 'InProgress') {
    return null;
  }
  const { pending } = model.stopState(detail.name);
  return (
    <button
      type="button"
      className={`jp-SMDebug-stopButton ${
        secondary ? 'jp-SMDebug-secondaryButton' : 'jp-SMDebug-dangerButton'
      }`}
      aria-label={trans.__('Stop %1', detail.name)}
      aria-disabled={pending}
      aria-busy={pending}
      title={trans.__('Stop this training job (asks first)')}
      onClick={() => {
        if (!pending) {
          actions.stopJob(detail.name);
        }
      }}
    >
      <stopIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
      {pending ? trans.__('Stopping…') : trans.__('Stop job…')}
    </button>
  );
}

function StopError(props: {
  detail: IJob;
  model: JobsModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { detail, model, trans } = props;
  const { error } = model.stopState(detail.name);
  return (
    <ErrorMessage
      className="jp-SMDebug-stopError"
      error={error}
      trans={trans}
      onDismiss={() => model.clearStopError(detail.name)}
    />
  );
}

/**
 * Debug a copy: start the job again with remote debug on and a hold window.
 * The main action of a finished job; a quieter one on a running job.
 */
function DebugCopy(props: {
  detail: IJob;
  model: JobsModel;
  actions: IJobActions;
  trans: TranslationBundle;
  secondary?: boolean;
}): JSX.Element {
  const { detail, model, actions, trans, secondary } = props;
  const { pending, error, copy } = model.debugCopyState(detail.name);
  const hold = formatDuration(trans, model.debugCopyHoldSeconds);
  const blocked = detail.network_isolation;
  const reason = trans.__(
    'This job runs with network isolation, which SageMaker does not allow with remote debug.'
  );
  return (
    <div
      className={`jp-SMDebug-debugCopy${secondary ? ' jp-mod-secondary' : ''}`}
    >
      <div className="jp-SMDebug-debugCopyRow">
        <button
          type="button"
          className={`jp-SMDebug-debugCopyButton ${
            secondary
              ? 'jp-SMDebug-secondaryButton'
              : 'jp-mod-styled jp-mod-accept jp-SMDebug-primaryButton'
          }`}
          aria-label={trans.__('Debug a copy of %1', detail.name)}
          aria-disabled={pending || blocked}
          aria-busy={pending}
          aria-describedby={blocked ? isolationNoteId(detail.name) : undefined}
          title={
            blocked
              ? reason
              : trans.__(
                  'Start a copy of this job with remote debug on. If it fails, its containers stay up (%1 by default) so you can attach.',
                  hold
                )
          }
          onClick={() => {
            if (!pending && !blocked) {
              actions.debugCopy(detail.name);
            }
          }}
        >
          <bugIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
          {pending ? trans.__('Starting a copy…') : trans.__('Debug a copy…')}
        </button>
        {secondary ? null : (
          <span className="jp-SMDebug-debugCopyHint">
            {trans.__('Remote debug on; held %1 if it fails', hold)}
          </span>
        )}
      </div>
      {copy ? (
        <div className="jp-SMDebug-debugCopyDone" role="status">
          {trans.__('Started')}{' '}
          <button
            type="button"
            className="jp-SMDebug-linkButton"
            aria-label={trans.__('Show the copy %1', copy)}
            onClick={() => {
              const found = model.find(copy);
              if (found) {
                void model.reveal(found);
              }
            }}
          >
            {copy}
          </button>
        </div>
      ) : null}
      <ErrorMessage
        {...{ error, trans, className: 'jp-SMDebug-debugCopyError' }}
        onDismiss={() => model.clearDebugCopyError(detail.name)}
      />
    </div>
  );
}

/**
 * Remote debug on or off. The switch shows what the server says; while a
 * change is in flight it is busy, and a refusal shows the server's reason.
 */
function RemoteDebugSwitch(props: {
  detail: IJob;
  model: JobsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { detail, model, trans } = props;
  const { pending, error } = model.remoteDebug(detail.name);
  const enabled = !!detail.remote_debug?.enabled;
  const busy = pending !== null;
  const labelId = `jp-SMDebug-rd-${detail.name}`;
  // Where a change can only fail (finished, starting, isolated), say why
  // instead of trying.
  const change = detail.remote_debug_change ?? { ok: true, reason: '' };
  const disabled = !change.ok;
  return (
    <div className="jp-SMDebug-remoteDebug">
      <div className="jp-SMDebug-switchRow">
        <span id={labelId} className="jp-SMDebug-label">
          {trans.__('Remote debug')}
        </span>
        <button
          type="button"
          role="switch"
          className={`jp-SMDebug-switch${enabled ? ' jp-mod-on' : ''}${
            busy ? ' jp-mod-busy' : ''
          }${disabled ? ' jp-mod-disabled' : ''}`}
          aria-checked={enabled}
          aria-busy={busy}
          aria-disabled={disabled}
          aria-describedby={
            disabled && detail.network_isolation
              ? isolationNoteId(detail.name)
              : undefined
          }
          aria-label={trans.__('Remote debug for %1', detail.name)}
          title={
            disabled
              ? change.reason
              : enabled
                ? trans.__('Turn remote debug off')
                : trans.__('Turn remote debug on')
          }
          onClick={() => {
            if (!busy && !disabled) {
              void model.setRemoteDebug(detail.name, !enabled);
            }
          }}
        >
          <span className="jp-SMDebug-switchTrack">
            <span className="jp-SMDebug-switchThumb" />
          </span>
        </button>
        <span className="jp-SMDebug-switchState" aria-live="polite">
          {busy
            ? pending
              ? trans.__('Turning on…')
              : trans.__('Turning off…')
            : enabled
              ? trans.__('On')
              : trans.__('Off')}
        </span>
      </div>
      <ErrorMessage
        {...{ error, trans, className: 'jp-SMDebug-remoteDebugError' }}
        onDismiss={() => model.clearRemoteDebugError(detail.name)}
      />
    </div>
  );
}
