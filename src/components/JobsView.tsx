import { TranslationBundle } from '@jupyterlab/translation';
import {
  caretDownIcon,
  caretRightIcon,
  launchIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { AttachManager } from '../attach';
import {
  elapsedOf,
  heldBadgeLabel,
  holdLabel,
  instancesLabel,
  whenOf
} from '../format';
import { secondaryStatusLabel, statusClass, statusLabel } from '../labels';
import { JobsModel } from '../model';
import {
  FILTER_STATUSES,
  IEnvironment,
  IJobSummary,
  JobStatus
} from '../types';
import { ErrorMessage, ProblemsBanner } from './Messages';
import { IJobActions, JobDetail } from './JobDetail';

export type { IJobActions } from './JobDetail';
import { useSignals } from './hooks';

export interface IJobsViewProps {
  model: JobsModel;
  attach: AttachManager;
  actions: IJobActions;
  trans: TranslationBundle;
}

/**
 * The whole sidebar: environment problems, filters, the job list.
 */
export function JobsView(props: IJobsViewProps): JSX.Element {
  const { model, attach, trans } = props;
  useSignals(model.changed, attach.changed);

  const environment = model.environment;
  return (
    <div className="jp-SMDebug-view">
      {/* Stays at the top while the list scrolls. */}
      <div className="jp-SMDebug-top">
        <div className="jp-SMDebug-header">
          <h2 className="jp-SMDebug-title">{trans.__('SageMaker Debug')}</h2>
          <button
            type="button"
            className="jp-SMDebug-iconButton"
            aria-label={trans.__('Refresh jobs')}
            title={trans.__('Refresh jobs')}
            onClick={() => void model.refresh()}
          >
            <refreshIcon.react
              tag="span"
              className={model.loading ? 'jp-SMDebug-spin' : undefined}
            />
          </button>
        </div>
        {environment ? (
          <div className="jp-SMDebug-context">
            {environment.region || environment.account ? (
              <span className="jp-SMDebug-account">
                {environment.account
                  ? trans.__(
                      'Account %1 · %2',
                      environment.account,
                      environment.region ?? trans.__('no region')
                    )
                  : (environment.region ?? '')}
              </span>
            ) : null}
            <SSMClientNote environment={environment} trans={trans} />
          </div>
        ) : null}
        <Filters model={model} trans={trans} />
        <LoadingBar loading={model.loading && model.loaded} trans={trans} />
      </div>
      <ProblemsBanner
        problems={environment?.problems ?? []}
        error={model.environmentError}
        trans={trans}
      />
      <ErrorMessage
        error={model.listError}
        trans={trans}
        onRetry={() => void model.refresh()}
      />
      <JobList {...props} />
    </div>
  );
}

/**
 * Which program an SSM attach will run: AWS's session-manager-plugin or the
 * built-in client. Small: it matters mostly when something goes wrong.
 */
function SSMClientNote(props: {
  environment: IEnvironment;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { environment, trans } = props;
  const clients = environment.clients ?? {};
  if (!('ssm' in clients)) {
    return null; // a server that does not say
  }
  let text: string;
  let title: string;
  switch (clients.ssm) {
    case 'plugin':
      text = trans.__('SSM: session-manager-plugin');
      title = trans.__(
        "SSM sessions run through AWS's session-manager-plugin (%1).",
        clients.session_manager_plugin ?? 'session-manager-plugin'
      );
      break;
    case 'builtin':
      text = trans.__('SSM: built-in client');
      title = clients.session_manager_plugin
        ? trans.__(
            "SSM sessions run through the extension's built-in client, as configured (c.SMDebug.ssm_client), although session-manager-plugin is installed."
          )
        : trans.__(
            "SSM sessions run through the extension's built-in client: session-manager-plugin is not installed, and not needed."
          );
      break;
    default:
      text = trans.__('SSM: no client');
      title = trans.__(
        'No SSM session client: c.SMDebug.ssm_client asks for session-manager-plugin, which is not installed. Install it, or set c.SMDebug.ssm_client to "auto".'
      );
  }
  return (
    <span
      className={`jp-SMDebug-ssmClient${clients.ssm ? '' : ' jp-mod-warning'}`}
      title={title}
      aria-label={title}
      role="note"
    >
      {text}
    </span>
  );
}

function Filters(props: {
  model: JobsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  // The input keeps what was typed; the model gets it trimmed and debounced.
  const [text, setText] = React.useState(model.nameFilter);
  const invalid = !model.nameFilterValid;
  // The model may clear the filter itself (to show a new debug copy).
  React.useEffect(() => {
    if (model.nameFilter !== text.trim()) {
      setText(model.nameFilter);
    }
  }, [model.nameFilter]);
  return (
    <div className="jp-SMDebug-filters">
      <input
        type="search"
        className="jp-mod-styled jp-SMDebug-nameFilter"
        placeholder={trans.__('Filter by name')}
        aria-label={trans.__('Filter jobs by name')}
        aria-invalid={invalid}
        aria-describedby={invalid ? 'jp-SMDebug-nameFilter-error' : undefined}
        value={text}
        onChange={event => {
          setText(event.target.value);
          model.setNameFilter(event.target.value);
        }}
      />
      <select
        className="jp-mod-styled jp-SMDebug-statusFilter"
        aria-label={trans.__('Filter jobs by status')}
        value={model.statusFilter}
        onChange={event =>
          model.setStatusFilter(event.target.value as JobStatus | '')
        }
      >
        <option value="">{trans.__('All statuses')}</option>
        {FILTER_STATUSES.map(status => (
          <option key={status} value={status}>
            {statusLabel(trans, status)}
          </option>
        ))}
      </select>
      {invalid ? (
        <div
          id="jp-SMDebug-nameFilter-error"
          className="jp-SMDebug-fieldError"
          role="alert"
        >
          {trans.__(
            'Job names have only letters, digits and hyphens (at most 63).'
          )}
        </div>
      ) : null}
    </div>
  );
}

/**
 * A thin bar while the list reloads. It takes no room of its own (no jump
 * of the list) and shows only when a reload takes a moment.
 */
function LoadingBar(props: {
  loading: boolean;
  trans: TranslationBundle;
}): JSX.Element {
  const { loading, trans } = props;
  return (
    <div className="jp-SMDebug-loadingTrack" aria-hidden={!loading}>
      {loading ? (
        <div
          className="jp-SMDebug-loadingBar"
          role="progressbar"
          aria-label={trans.__('Loading training jobs')}
        />
      ) : null}
    </div>
  );
}

/**
 * What the list says when it has no rows: loading, nothing matches the
 * filters, or no jobs at all.
 */
function EmptyList(props: {
  model: JobsModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const reason = model.emptyReason;
  if (reason === 'loading') {
    return (
      <p className="jp-SMDebug-empty" role="status">
        {trans.__('Loading training jobs…')}
      </p>
    );
  }
  if (reason === 'error' || reason === 'invalidFilter') {
    return null; // the error above, or the filter's own message, says why
  }
  if (reason === 'noMatch') {
    return (
      <div className="jp-SMDebug-emptyState" role="status">
        <p className="jp-SMDebug-empty">
          {trans.__('No training jobs match these filters.')}
        </p>
        <button
          type="button"
          className="jp-SMDebug-linkButton"
          aria-label={trans.__('Clear the filters and show all training jobs')}
          onClick={() => model.clearFilters()}
        >
          {trans.__('Clear filters')}
        </button>
      </div>
    );
  }
  const region = model.environment?.region;
  return (
    <div className="jp-SMDebug-emptyState" role="status">
      <p className="jp-SMDebug-empty">
        {region
          ? trans.__('No training jobs in %1.', region)
          : trans.__('No training jobs in this account and region.')}
      </p>
      <p className="jp-SMDebug-emptyHint">
        {trans.__(
          'Jobs started from the SageMaker Python SDK, the console or the AWS CLI show up here. Running one in another region? Set c.SMDebug.region, or AWS_REGION for the server.'
        )}
      </p>
    </div>
  );
}

/**
 * Arrow keys move between the job rows (Home and End to the first and last),
 * Right and Left open and close one; Enter and Space toggle it, as buttons do.
 */
function onListKeyDown(
  model: JobsModel,
  list: HTMLUListElement | null,
  event: React.KeyboardEvent
): void {
  const target = event.target as HTMLElement;
  if (!list || !target.classList.contains('jp-SMDebug-jobHeader')) {
    return;
  }
  const headers = Array.from(
    list.querySelectorAll<HTMLElement>(
      ':scope > .jp-SMDebug-job > .jp-SMDebug-jobHeaderRow > .jp-SMDebug-jobHeader'
    )
  );
  const index = headers.indexOf(target);
  const job = target.closest('.jp-SMDebug-job')?.getAttribute('data-job');
  let next: HTMLElement | undefined;
  switch (event.key) {
    case 'ArrowDown':
      next = headers[Math.min(index + 1, headers.length - 1)];
      break;
    case 'ArrowUp':
      next = headers[Math.max(index - 1, 0)];
      break;
    case 'Home':
      next = headers[0];
      break;
    case 'End':
      next = headers[headers.length - 1];
      break;
    case 'ArrowRight':
    case 'ArrowLeft':
      if (job) {
        model.setExpanded(job, event.key === 'ArrowRight');
      }
      break;
    default:
      return;
  }
  event.preventDefault();
  event.stopPropagation();
  if (next && next !== target) {
    next.focus({ preventScroll: true });
    next.scrollIntoView({ block: 'nearest' });
  }
}

function JobList(props: IJobsViewProps): JSX.Element {
  const { model, trans } = props;
  const jobs = model.jobs;
  const listRef = React.useRef<HTMLUListElement>(null);

  // Bring a revealed job (a new debug copy) into view, with the focus on it.
  React.useEffect(() => {
    const onReveal = (_: JobsModel, job: string) => {
      // Once React has rendered the row: look for it for a few frames.
      let frames = 10;
      const focus = () => {
        const header = listRef.current?.querySelector<HTMLElement>(
          `.jp-SMDebug-job[data-job="${CSS.escape(job)}"] > .jp-SMDebug-jobHeaderRow > .jp-SMDebug-jobHeader`
        );
        if (header) {
          header.scrollIntoView({ block: 'nearest' });
          header.focus({ preventScroll: true });
        } else if (--frames > 0) {
          requestAnimationFrame(focus);
        }
      };
      requestAnimationFrame(focus);
    };
    model.revealRequested.connect(onReveal);
    return () => {
      model.revealRequested.disconnect(onReveal);
    };
  }, [model]);

  return (
    <>
      {jobs.length === 0 ? (
        <EmptyList model={model} trans={trans} />
      ) : (
        <ul
          ref={listRef}
          className="jp-SMDebug-jobList"
          aria-label={trans.__('Training jobs')}
          aria-busy={model.loading}
          onKeyDown={event => onListKeyDown(model, listRef.current, event)}
        >
          {jobs.map(job => (
            <JobRow key={job.name} job={job} {...props} />
          ))}
        </ul>
      )}
      {jobs.length > 0 && model.hasMore ? (
        <button
          type="button"
          className="jp-SMDebug-loadMore"
          disabled={model.loadingMore}
          aria-busy={model.loadingMore}
          aria-label={trans.__('Load more training jobs')}
          onClick={() => void model.loadMore()}
        >
          {model.loadingMore ? trans.__('Loading…') : trans.__('Load more')}
        </button>
      ) : null}
    </>
  );
}

/**
 * What a screen reader says for a job's row: everything the row shows.
 */
function rowLabel(trans: TranslationBundle, job: IJobSummary): string {
  const parts = [job.name, statusLabel(trans, job.status)];
  if (job.secondary_status && job.secondary_status !== job.status) {
    parts.push(secondaryStatusLabel(trans, job.secondary_status));
  }
  if (job.remote_debug?.enabled) {
    parts.push(trans.__('remote debug on'));
  }
  parts.push(instancesLabel(trans, job));
  const elapsed = elapsedOf(trans, job);
  if (elapsed) {
    parts.push(elapsed.title);
  }
  const when = whenOf(trans, job);
  if (when) {
    parts.push(when.text);
  }
  return parts.join(', ');
}

function JobRow(props: IJobsViewProps & { job: IJobSummary }): JSX.Element {
  const { job, model, trans } = props;
  const expanded = model.isExpanded(job.name);
  const detailId = `jp-SMDebug-detail-${job.name}`;
  const when = whenOf(trans, job);
  const Caret = expanded ? caretDownIcon : caretRightIcon;
  const selected = model.selected === job.name;
  const hold = model.detail(job.name)?.job?.hold ?? null;
  const elapsed = elapsedOf(trans, job);
  const rowRef = React.useRef<HTMLLIElement>(null);
  // Expanded by a click: bring the details into view once they are shown.
  const wantScroll = React.useRef(false);
  const detailShown = expanded && !!model.detail(job.name)?.job;
  React.useEffect(() => {
    if (!wantScroll.current || !expanded) {
      return;
    }
    if (detailShown) {
      wantScroll.current = false;
    }
    const frame = requestAnimationFrame(() =>
      rowRef.current?.scrollIntoView({ block: 'nearest' })
    );
    return () => cancelAnimationFrame(frame);
  }, [expanded, detailShown]);
  return (
    <li
      ref={rowRef}
      className={`jp-SMDebug-job ${statusClass(job.status)}${
        selected ? ' jp-mod-selected' : ''
      }${hold ? ' jp-mod-held' : ''}`}
      data-job={job.name}
    >
      <div className="jp-SMDebug-jobHeaderRow">
        <button
          type="button"
          className="jp-SMDebug-jobHeader"
          aria-expanded={expanded}
          aria-controls={expanded ? detailId : undefined}
          aria-current={selected ? 'true' : undefined}
          aria-label={rowLabel(trans, job)}
          onClick={() => {
            model.select(job.name);
            wantScroll.current = !expanded;
            model.toggleExpanded(job.name);
          }}
        >
          <Caret.react tag="span" className="jp-SMDebug-caret" />
          <span className="jp-SMDebug-jobMain">
            <span className="jp-SMDebug-jobName" title={job.name}>
              {job.name}
            </span>
            <span className="jp-SMDebug-badges">
              {hold ? (
                <span
                  className="jp-SMDebug-badge jp-mod-failed jp-mod-held"
                  title={holdLabel(trans, hold)}
                >
                  {heldBadgeLabel(trans, hold)}
                </span>
              ) : (
                <span className={`jp-SMDebug-badge ${statusClass(job.status)}`}>
                  {statusLabel(trans, job.status)}
                </span>
              )}
              {!hold &&
              job.secondary_status &&
              job.secondary_status !== job.status ? (
                <span className="jp-SMDebug-badge jp-mod-secondary">
                  {secondaryStatusLabel(trans, job.secondary_status)}
                </span>
              ) : null}
              {job.remote_debug?.enabled ? (
                <span
                  className="jp-SMDebug-badge jp-mod-remoteDebug"
                  title={trans.__('Remote debug is on')}
                >
                  {trans.__('Remote debug')}
                </span>
              ) : null}
            </span>
            <span className="jp-SMDebug-jobMeta">
              <span className="jp-SMDebug-instances">
                {instancesLabel(trans, job)}
              </span>
              {elapsed && !elapsed.billable ? (
                <>
                  {' · '}
                  {/* While it runs: how long so far; the start in the title. */}
                  <time
                    className="jp-SMDebug-elapsed"
                    dateTime={when?.iso}
                    title={
                      when ? `${elapsed.title} (${when.title})` : elapsed.title
                    }
                  >
                    {elapsed.text}
                  </time>
                </>
              ) : (
                <>
                  {elapsed ? (
                    <>
                      {' · '}
                      <span
                        className="jp-SMDebug-elapsed jp-mod-billable"
                        title={elapsed.title}
                      >
                        {trans.__('%1 billed', elapsed.text)}
                      </span>
                    </>
                  ) : null}
                  {when ? (
                    <>
                      {' · '}
                      {/* A finished job: when it ended, not when it started. */}
                      <time
                        className="jp-SMDebug-when"
                        dateTime={when.iso}
                        title={when.title}
                      >
                        {when.text}
                      </time>
                    </>
                  ) : null}
                </>
              )}
            </span>
          </span>
        </button>
        {job.console_url ? (
          <a
            className="jp-SMDebug-consoleLink"
            href={job.console_url}
            target="_blank"
            rel="noopener noreferrer"
            aria-label={trans.__('Open %1 in the AWS console', job.name)}
            title={trans.__('Open in the AWS console')}
          >
            <launchIcon.react tag="span" />
          </a>
        ) : null}
      </div>
      {expanded ? (
        <div
          id={detailId}
          className="jp-SMDebug-detailContainer"
          role="region"
          aria-label={trans.__('Details of %1', job.name)}
        >
          <JobDetail {...props} />
        </div>
      ) : null}
    </li>
  );
}
