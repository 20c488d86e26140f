import { TranslationBundle } from '@jupyterlab/translation';
import { folderIcon, listIcon, terminalIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { AttachManager, IAttachSession } from '../attach';
import { KernelButtons, KernelError } from '../kernels/buttons';
import { transportLabel } from '../labels';
import { JobsModel } from '../model';
import { IHost, IJob, Transport, TRANSPORTS } from '../types';
import { AllHostsActions } from './AllHosts';
import type { IJobActions } from './JobDetail';
import { ErrorMessage } from './Messages';

/**
 * The id of the note that says a job runs with network isolation.
 */
export function isolationNoteId(job: string): string {
  return `jp-SMDebug-isolation-${job}`;
}

/**
 * The hosts of a job: the transport picker, Attach all, the all-hosts views,
 * and one row per host with its log, Attach and Open port.
 */
export function Hosts(props: {
  detail: IJob;
  model: JobsModel;
  attach: AttachManager;
  actions: IJobActions;
  trans: TranslationBundle;
}): JSX.Element {
  const { detail, model, attach, trans } = props;
  const [transport, setTransport] = React.useState<Transport>(
    model.defaultTransport
  );
  const check = model.attachState(detail, transport);
  const reasonId = detail.network_isolation
    ? isolationNoteId(detail.name)
    : `jp-SMDebug-attachReason-${detail.name}`;
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
      {!check.ok && check.reason && !detail.network_isolation ? (
        <div id={reasonId} className="jp-SMDebug-attachReason">
          {check.reason}
        </div>
      ) : null}
      {/* While the job runs they show, disabled with the reason when the
          transport cannot reach the hosts (e.g. SSM with remote debug off). */}
      {(check.ok || detail.status === 'InProgress') &&
      props.actions.allHosts ? (
        <AllHostsActions
          job={detail.name}
          transport={transport}
          trans={trans}
          unavailable={check.ok ? null : { reason: check.reason, reasonId }}
          open={(view, t) =>
            props.actions.allHosts?.(detail.name, view, { transport: t })
          }
        />
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
            actions={props.actions}
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
  actions: IJobActions;
  trans: TranslationBundle;
}): JSX.Element {
  const { host, detail, transport, ok, reason, attach, actions, trans } = props;
  const openPort = actions.openPort;
  const openFiles = actions.openFiles;
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
        <span className="jp-SMDebug-hostActions">
          <button
            type="button"
            className="jp-SMDebug-logsButton"
            aria-label={trans.__('Logs of %1 of %2', host.name, detail.name)}
            title={trans.__("Follow this host's CloudWatch log in a tab")}
            onClick={() => actions.openLogs(detail.name, host.name)}
          >
            <listIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
            {trans.__('Logs')}
          </button>
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
          {openFiles ? (
            <button
              type="button"
              className="jp-SMDebug-filesButton"
              aria-disabled={!ok}
              aria-describedby={!ok ? props.reasonId : undefined}
              aria-label={trans.__(
                'Files of %1 of %2 over %3',
                host.name,
                detail.name,
                transportLabel(trans, transport)
              )}
              title={
                ok
                  ? trans.__("Browse and edit this host's files in a tab")
                  : reason
              }
              onClick={() => {
                if (ok) {
                  openFiles(detail.name, host.name, transport);
                }
              }}
            >
              <folderIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
              {trans.__('Files')}
            </button>
          ) : null}
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
        </span>
      </div>
      {actions.kernels ? (
        <KernelButtons
          kernels={actions.kernels}
          job={detail.name}
          host={host.name}
          transport={transport}
          ok={ok}
          reason={reason}
          reasonId={props.reasonId}
          trans={trans}
        />
      ) : null}
      <ErrorMessage
        error={session?.status === 'failed' ? session.error : null}
        trans={trans}
      />
      {actions.kernels ? (
        <KernelError
          kernels={actions.kernels}
          job={detail.name}
          host={host.name}
          trans={trans}
        />
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
