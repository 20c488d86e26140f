import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';

import { IHold, IJobSummary, isFinished } from './types';

/**
 * What a job runs on: "4 × ml.g5.12xlarge", or each instance group's
 * ("1 × ml.c5.4xlarge + 2 × ml.g5.12xlarge"). Empty when the server does not say.
 */
export function instancesLabel(
  trans: TranslationBundle,
  job: IJobSummary
): string {
  const groups = (job.instances ?? []).filter(group => group.type);
  if (job.instance_count === null) {
    return ''; // not described yet: the row fills in when its description arrives
  }
  if (groups.length === 0) {
    return trans._n('%1 instance', '%1 instances', job.instance_count);
  }
  return groups
    .map(group => trans.__('%1 × %2', group.count, group.type ?? ''))
    .join(' + ');
}

/**
 * "45 s", "12 min", "3 h 05 min", "2 d 4 h": a span of time for people.
 */
export function formatElapsed(
  trans: TranslationBundle,
  seconds: number
): string {
  seconds = Math.max(0, Math.floor(seconds));
  if (seconds < 60) {
    return trans.__('%1 s', seconds);
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return trans.__(
      '%1 h %2 min',
      hours,
      String(minutes % 60).padStart(2, '0')
    );
  }
  return trans.__('%1 d %2 h', Math.floor(hours / 24), hours % 24);
}

/**
 * How long a job has run (while it runs) or was billed for (once finished),
 * and how to say which it is. Null when the server gave no times.
 */
export function elapsedOf(
  trans: TranslationBundle,
  job: IJobSummary,
  now: number = Date.now()
): { text: string; title: string; billable: boolean } | null {
  if (isFinished(job.status)) {
    const billable = job.billable_seconds;
    if (typeof billable !== 'number') {
      return null;
    }
    const text = formatElapsed(trans, billable);
    const trained = job.training_seconds;
    return {
      text,
      billable: true,
      title:
        typeof trained === 'number' && trained !== billable
          ? trans.__(
              'Billable time %1 (trained %2)',
              text,
              formatElapsed(trans, trained)
            )
          : trans.__('Billable time %1', text)
    };
  }
  const since = job.started ?? job.created;
  if (!since) {
    return null;
  }
  const text = formatElapsed(trans, (now - Date.parse(since)) / 1000);
  return {
    text,
    billable: false,
    title: job.started
      ? trans.__('Running for %1 since training started', text)
      : trans.__('%1 since the job was created', text)
  };
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1]
];

/**
 * "2 minutes ago", "yesterday", "now": how long ago a time was, in the
 * page's language.
 */
export function timeAgo(
  iso: string,
  now: number = Date.now(),
  lang: string = document.documentElement.lang || 'en'
): string {
  const formatter = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  for (const [unit, size] of UNITS) {
    const amount = Math.trunc(seconds / size);
    if (amount !== 0) {
      return formatter.format(amount, unit);
    }
  }
  return formatter.format(0, 'second');
}

/**
 * Where a job stands in time: a finished job by its end ("ended 2 minutes
 * ago"), a started one by its start, any other by its creation. Null when
 * the server gave no times.
 */
export function whenOf(
  trans: TranslationBundle,
  job: IJobSummary,
  now: number = Date.now()
): { iso: string; text: string; title: string } | null {
  if (isFinished(job.status) && job.ended) {
    return {
      iso: job.ended,
      text: trans.__('ended %1', timeAgo(job.ended, now)),
      title: trans.__('Ended %1', Time.format(job.ended))
    };
  }
  if (job.started) {
    return {
      iso: job.started,
      text: trans.__('started %1', timeAgo(job.started, now)),
      title: trans.__('Started %1', Time.format(job.started))
    };
  }
  if (job.created) {
    return {
      iso: job.created,
      text: trans.__('created %1', timeAgo(job.created, now)),
      title: trans.__('Created %1', Time.format(job.created))
    };
  }
  return null;
}

/**
 * Whole minutes left in a hold (0 once it is over).
 */
export function minutesLeft(hold: IHold, now: number = Date.now()): number {
  return Math.max(0, Math.ceil((Date.parse(hold.until) - now) / 60000));
}

/**
 * The collapsed row's badge: "Held · 23 min left" (the full label is its title).
 */
export function heldBadgeLabel(
  trans: TranslationBundle,
  hold: IHold,
  now: number = Date.now()
): string {
  return trans.__('Held · %1 min left', minutesLeft(hold, now));
}

/**
 * "Failed · held for debugging · 23 min left".
 */
export function holdLabel(
  trans: TranslationBundle,
  hold: IHold,
  now: number = Date.now()
): string {
  return trans.__(
    'Failed · held for debugging · %1 min left',
    minutesLeft(hold, now)
  );
}
