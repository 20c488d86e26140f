import { InputDialog, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { JobsModel } from './model';
import { SMDebugError } from './request';
import { isFinished } from './types';

/**
 * Say a failure in the notification centre: its message and its hint.
 */
export function notifyError(error: SMDebugError | null | undefined): void {
  if (error) {
    Notification.error(
      error.hint ? `${error.message} ${error.hint}` : error.message,
      { autoClose: false }
    );
  }
}

/**
 * Which jobs a picker offers: the running ones, or every listed one (finished
 * first: the usual reason to debug a copy or read a log is a run that failed).
 */
export type JobChoice = 'running' | 'any';

/**
 * The jobs a picker offers, in order.
 */
export function jobChoices(model: JobsModel, choice: JobChoice): string[] {
  const jobs = model.jobs.filter(job =>
    choice === 'running'
      ? job.status === 'InProgress'
      : job.status !== 'Deleting'
  );
  return [
    ...jobs.filter(job => isFinished(job.status)),
    ...jobs.filter(job => !isFinished(job.status))
  ].map(job => job.name);
}

/**
 * Ask for a job when a command was not given one.
 *
 * @returns the job, or null when there is none or the user cancelled
 */
export async function pickJob(
  model: JobsModel,
  trans: TranslationBundle,
  title: string,
  choice: JobChoice
): Promise<string | null> {
  model.start();
  if (!model.loaded) {
    await model.refresh();
  }
  notifyError(model.error);
  const names = jobChoices(model, choice);
  if (names.length === 0) {
    if (!model.error) {
      Notification.warning(
        choice === 'running'
          ? trans.__('No running training job is listed in the sidebar.')
          : trans.__('No training job is listed in the sidebar.')
      );
    }
    return null;
  }
  return pickItem(title, names, trans.__('Training job'));
}

/**
 * The hosts of a job, from its description; null (the error said) when it
 * could not be loaded.
 */
export async function hostsOf(
  model: JobsModel,
  job: string
): Promise<string[] | null> {
  const detail = await model.loadDetail(job);
  if (!detail) {
    notifyError(model.detail(job)?.error);
    return null;
  }
  return detail.hosts.map(host => host.name);
}

/**
 * Ask for a host of a job; a job with one host needs no asking.
 *
 * @returns the host, or null when the user cancelled
 */
export async function pickHost(
  model: JobsModel,
  trans: TranslationBundle,
  job: string,
  title: string
): Promise<string | null> {
  const hosts = await hostsOf(model, job);
  if (!hosts || hosts.length === 0) {
    return null;
  }
  return hosts.length === 1
    ? hosts[0]
    : pickItem(title, hosts, trans.__('Host'));
}

async function pickItem(
  title: string,
  items: string[],
  label: string
): Promise<string | null> {
  const answer = await InputDialog.getItem({ title, items, label });
  return answer.button.accept && answer.value ? answer.value : null;
}
