import { TranslationBundle } from '@jupyterlab/translation';
import { bugIcon, terminalIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { AttachManager, IAttachSession } from '../attach';
import { formatDuration } from '../dialogs';
import { transportLabel } from '../labels';
import { JobsModel } from '../model';
import {
  IHost,
  IJob,
  IJobSummary,
  isFinished,
  Transport,
  TRANSPORTS
} from '../types';
import { ErrorMessage } from './Messages';

/**
 * What the panel's buttons do beyond the model: the flows with dialogs, which
 * are commands.
 */
export interface IJobActions {
  /** Ask for the hold window, then start a debug copy of the job. */
  debugCopy(job: string): void;
  /** Ask for a port, then show that port of the host in a tab. */
  openPort?(job: string, host: string, transport: Transport): void;
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

  return (
    <div className="jp-SMDebug-detail">
      {state?.error ? (
        <ErrorMessage
          error={state.error}
          trans={trans}
          onRetry={() => void model.loadDetail(job.name, true)}
        />
      ) : null}
      {detail.failure_reason ? (
        <div className="jp-SMDebug-failure">
          <span className="jp-SMDebug-label">{trans.__('Failure reason')}</span>
          <span className="jp-SMDebug-failureText">
            {detail.failure_reason}
          </span>
        </div>
      ) : null}
      {isFinished(detail.status) ? (
        <DebugCopy
          detail={detail}
          model={model}
          actions={actions}
          trans={trans}
        />
      ) : null}
      <RemoteDebugSwitch detail={detail} model={model} trans={trans} />
      <Hosts {...props} detail={detail} />
      {detail.status === 'InProgress' || detail.status === 'Stopping' ? (
        <DebugCopy
          detail={detail}
          model={model}
          actions={actions}
          trans={trans}
          secondary
        />
      ) : null}
    </div>
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
  const reasonId = `jp-SMDebug-copyReason-${detail.name}`;
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
          aria-describedby={blocked ? reasonId : undefined}
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
      {blocked ? (
        <div id={reasonId} className="jp-SMDebug-attachReason">
          {reason}
        </div>
      ) : null}
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
      {error ? (
        <ErrorMessage
          className="jp-SMDebug-debugCopyError"
          error={error}
          trans={trans}
          onDismiss={() => model.clearDebugCopyError(detail.name)}
        />
      ) : null}
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
          }`}
          aria-checked={enabled}
          aria-busy={busy}
          aria-label={trans.__('Remote debug for %1', detail.name)}
          title={
            enabled
              ? trans.__('Turn remote debug off')
              : trans.__('Turn remote debug on')
          }
          onClick={() => {
            if (!busy) {
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
      {error ? (
        <ErrorMessage
          className="jp-SMDebug-remoteDebugError"
          error={error}
          trans={trans}
          onDismiss={() => model.clearRemoteDebugError(detail.name)}
        />
      ) : null}
    </div>
  );
}

function Hosts(props: IJobDetailProps & { detail: IJob }): JSX.Element {
  const { detail, model, attach, trans } = props;
  const [transport, setTransport] = React.useState<Transport>(
    model.defaultTransport
  );
  const check = detail.attach?.[transport] ?? { ok: false, reason: '' };
  const reasonId = `jp-SMDebug-attachReason-${detail.name}`;
  const hosts = detail.hosts ?? [];

  return (
    <div className="jp-SMDebug-hosts">
      <div className="jp-SMDebug-hostsHeader">
        <span className="jp-SMDebug-label">
          {trans._n('%1 host', '%1 hosts', hosts.length)}
        </span>
        <select
          className="jp-mod-styled jp-SMDebug-transport"
          aria-label={trans.__('Transport for %1', detail.name)}
          value={transport}
          onChange={event => setTransport(event.target.value as Transport)}
        >
          {TRANSPORTS.map(t => (
            <option key={t} value={t}>
              {transportLabel(trans, t)}
            </option>
          ))}
        </select>
        {hosts.length > 1 ? (
          <button
            type="button"
            className="jp-SMDebug-attachAll"
            aria-disabled={!check.ok}
            aria-describedby={!check.ok ? reasonId : undefined}
            aria-label={trans.__(
              'Attach to all %1 hosts of %2 over %3',
              hosts.length,
              detail.name,
              transportLabel(trans, transport)
            )}
            title={check.ok ? undefined : check.reason}
            onClick={() => {
              if (check.ok) {
                for (const host of hosts) {
                  void attach.attach(detail.name, host.name, transport);
                }
              }
            }}
          >
            {trans.__('Attach all')}
          </button>
        ) : null}
      </div>
      {!check.ok && check.reason ? (
        <div id={reasonId} className="jp-SMDebug-attachReason">
          {check.reason}
        </div>
      ) : null}
      <ul className="jp-SMDebug-hostList" aria-label={trans.__('Hosts')}>
        {hosts.map(host => (
          <HostRow
            key={host.name}
            host={host}
            detail={detail}
            transport={transport}
            ok={check.ok}
            reason={check.reason}
            reasonId={reasonId}
            attach={attach}
            openPort={props.actions.openPort}
            trans={trans}
          />
        ))}
      </ul>
    </div>
  );
}

function HostRow(props: {
  host: IHost;
  detail: IJob;
  transport: Transport;
  ok: boolean;
  reason: string;
  reasonId: string;
  attach: AttachManager;
  openPort?: IJobActions['openPort'];
  trans: TranslationBundle;
}): JSX.Element {
  const { host, detail, transport, ok, reason, attach, trans } = props;
  const openPort = props.openPort;
  const session = attach.session(detail.name, host.name, transport);
  const attaching = session?.status === 'attaching';
  // A shell open over the other transport shows too (e.g. after a reload,
  // when the transport picker is back to its default).
  const other = attach
    .sessionsOf(detail.name, host.name)
    .find(s => s.transport !== transport && s.status === 'open');
  return (
    <li className="jp-SMDebug-host" data-host={host.name}>
      <div className="jp-SMDebug-hostLine">
        <span className="jp-SMDebug-hostName">{host.name}</span>
        <span className="jp-SMDebug-hostMeta">
          {[host.instance_type, host.group].filter(Boolean).join(' · ')}
        </span>
        <SessionBadge
          session={session?.status === 'open' || !other ? session : other}
          showTransport={!!other && session?.status !== 'open'}
          trans={trans}
        />
        <button
          type="button"
          className="jp-SMDebug-attach"
          aria-disabled={!ok || attaching}
          aria-describedby={!ok ? props.reasonId : undefined}
          aria-label={trans.__(
            'Attach to %1 of %2 over %3',
            host.name,
            detail.name,
            transportLabel(trans, transport)
          )}
          title={ok ? undefined : reason}
          onClick={() => {
            if (ok && !attaching) {
              void attach.attach(detail.name, host.name, transport);
            }
          }}
        >
          <terminalIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
          {attaching ? trans.__('Attaching…') : trans.__('Attach')}
        </button>
        {openPort ? (
          <button
            type="button"
            className="jp-SMDebug-openPort"
            aria-disabled={!ok}
            aria-label={trans.__(
              'Open a port of %1 of %2 over %3',
              host.name,
              detail.name,
              transportLabel(trans, transport)
            )}
            title={
              ok ? trans.__('Show a web UI of this host in a tab') : reason
            }
            onClick={() => {
              if (ok) {
                openPort(detail.name, host.name, transport);
              }
            }}
          >
            {trans.__('Open port…')}
          </button>
        ) : null}
      </div>
      {session?.status === 'failed' && session.error ? (
        <ErrorMessage error={session.error} trans={trans} />
      ) : null}
    </li>
  );
}

function SessionBadge(props: {
  session: IAttachSession | undefined;
  showTransport?: boolean;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { session, showTransport, trans } = props;
  if (!session || session.status === 'failed') {
    return null;
  }
  switch (session.status) {
    case 'attaching':
      return null;
    case 'open':
      return (
        <span
          className="jp-SMDebug-badge jp-mod-session jp-mod-open"
          title={trans.__(
            'A shell on this host is open over %1',
            transportLabel(trans, session.transport)
          )}
        >
          {showTransport
            ? trans.__(
                'attached · %1',
                transportLabel(trans, session.transport)
              )
            : trans.__('attached')}
        </span>
      );
    case 'ended':
      return (
        <span
          className="jp-SMDebug-badge jp-mod-session jp-mod-ended"
          title={trans.__('The shell session ended. Attach to start another.')}
        >
          {trans.__('ended')}
        </span>
      );
  }
}
