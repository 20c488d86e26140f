import { TranslationBundle } from '@jupyterlab/translation';

import { JobStatus, Transport } from './types';

/**
 * Readable, translated names for what the server sends as identifiers.
 * Each string is a literal so that translation tools can find it.
 */

export function statusLabel(trans: TranslationBundle, status: string): string {
  // The statuses a job shares with its secondary status read the same.
  switch (status as JobStatus) {
    case 'InProgress':
      return trans.__('In progress');
    case 'Deleting':
      return trans.__('Deleting');
    default:
      return secondaryStatusLabel(trans, status);
  }
}

export function secondaryStatusLabel(
  trans: TranslationBundle,
  status: string
): string {
  switch (status) {
    case 'Starting':
      return trans.__('Starting');
    case 'Pending':
      return trans.__('Pending');
    case 'LaunchingMLInstances':
      return trans.__('Launching ML instances');
    case 'PreparingTrainingStack':
      return trans.__('Preparing training stack');
    case 'Downloading':
      return trans.__('Downloading');
    case 'DownloadingTrainingImage':
      return trans.__('Downloading training image');
    case 'Training':
      return trans.__('Training');
    case 'Uploading':
      return trans.__('Uploading');
    case 'Stopping':
      return trans.__('Stopping');
    case 'Stopped':
      return trans.__('Stopped');
    case 'Completed':
      return trans.__('Completed');
    case 'Failed':
      return trans.__('Failed');
    case 'Interrupted':
      return trans.__('Interrupted');
    case 'MaxRuntimeExceeded':
      return trans.__('Max runtime exceeded');
    case 'MaxWaitTimeExceeded':
      return trans.__('Max wait time exceeded');
    case 'Updating':
      return trans.__('Updating');
    case 'Restarting':
      return trans.__('Restarting');
    default:
      // Unknown to this version: split the CamelCase identifier into words.
      return status.replace(/([a-z])([A-Z])/g, '$1 $2');
  }
}

export function transportLabel(
  trans: TranslationBundle,
  transport: Transport
): string {
  return transport === 'ssh' ? trans.__('SSH') : trans.__('SSM');
}

/**
 * A CSS modifier for a status: `jp-mod-inprogress`, `jp-mod-failed`, ...
 */
export function statusClass(status: string): string {
  return `jp-mod-${status.toLowerCase()}`;
}
