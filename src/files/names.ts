/**
 * Names of a host's files in JupyterLab: the drive of a host and the REST
 * URLs of its paths.
 *
 * A drive's name is `sm-debug.<job>.<host>`. JupyterLab splits a global path
 * `drive:local/path` at the first ":" of its first "/"-separated part, so a
 * drive name may hold neither ":" nor "/". SageMaker job names and host names
 * (`algo-1`) are letters, digits and hyphens and are kept as they are, which
 * makes the name readable in tooltips; any other character (and ".", the
 * separator) is percent-encoded, so every (job, host) pair has one name and
 * the name gives the pair back.
 */

import { Transport } from '../types';

/**
 * The prefix of every drive of this extension.
 */
export const DRIVE_PREFIX = 'sm-debug';

/**
 * What a drive stands for.
 */
export interface IHostRef {
  job: string;
  host: string;
}

/**
 * A part of a drive name: letters, digits and "-" as they are, anything else
 * as %XX of its UTF-8 bytes.
 */
function encodePart(value: string): string {
  return encodeURIComponent(value).replace(
    /[^A-Za-z0-9%-]/g,
    c => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')
  );
}

/**
 * The drive name of a host of a job.
 */
export function driveName(job: string, host: string): string {
  if (!job || !host) {
    throw new Error('A drive needs a job and a host.');
  }
  return `${DRIVE_PREFIX}.${encodePart(job)}.${encodePart(host)}`;
}

/**
 * The job and host a drive name stands for; null for any other name
 * (another extension's drive, the default drive "", a malformed name).
 */
export function parseDriveName(name: string): IHostRef | null {
  const parts = name.split('.');
  if (parts.length !== 3 || parts[0] !== DRIVE_PREFIX) {
    return null;
  }
  try {
    const job = decodeURIComponent(parts[1]);
    const host = decodeURIComponent(parts[2]);
    if (!job || !host || driveName(job, host) !== name) {
      return null;
    }
    return { job, host };
  } catch {
    return null;
  }
}

/**
 * The drive part of a global JupyterLab path (`drive:local/path`), as
 * JupyterLab's ContentsManager reads it; "" when there is none.
 */
export function driveOfPath(path: string): string {
  const first = path.split('/')[0];
  const colon = first.indexOf(':');
  return colon < 0 ? '' : first.slice(0, colon);
}

/**
 * The path inside the container of a drive-local path: `opt/ml/x` is
 * `/opt/ml/x`, "" is `/`.
 */
export function containerPath(localPath: string): string {
  return '/' + splitPath(localPath).join('/');
}

/**
 * The segments of a drive-local path, without empty ones and "." (JupyterLab
 * normalises paths before they reach a drive; a ".." left over is refused).
 */
export function splitPath(localPath: string): string[] {
  const parts = localPath.split('/').filter(part => part && part !== '.');
  if (parts.includes('..')) {
    throw new Error(`"${localPath}" goes up with "..": give a path from /.`);
  }
  return parts;
}

/**
 * The REST path (under `/sm-debug/`) of a file or directory of a host: each
 * segment URL-encoded on its own, so a name with "?", "#", "%" or a space is
 * one segment and "/" in a name cannot occur (a name never holds one).
 */
export function filesEndpoint(ref: IHostRef, localPath: string): string {
  const segments = splitPath(localPath).map(encodeURIComponent);
  return (
    `jobs/${encodeURIComponent(ref.job)}/hosts/${encodeURIComponent(ref.host)}` +
    `/files/${segments.join('/')}`
  );
}

/**
 * The query of a files request: the transport, then the other parameters in
 * the order given.
 */
export function filesQuery(
  transport: Transport | null,
  params: Record<string, string> = {}
): string {
  const query = new URLSearchParams();
  if (transport) {
    query.set('transport', transport);
  }
  for (const [key, value] of Object.entries(params)) {
    query.set(key, value);
  }
  const text = query.toString();
  return text ? `?${text}` : '';
}

/**
 * A file's MIME type from its name, for the viewers that need one (the image
 * viewer builds a data URL with it). Decided here, never by the container.
 */
export function mimeTypeOf(name: string, format: 'text' | 'base64'): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  const known: Record<string, string> = {
    png: 'image/png',
    gif: 'image/gif',
    jpg: 'image/jpeg',
    jpeg: 'image/jpeg',
    bmp: 'image/bmp',
    ico: 'image/x-icon',
    tif: 'image/tiff',
    tiff: 'image/tiff',
    webp: 'image/webp',
    svg: 'image/svg+xml',
    xbm: 'image/x-xbitmap',
    json: 'application/json',
    csv: 'text/csv',
    tsv: 'text/tab-separated-values'
  };
  if (name.includes('.') && known[ext]) {
    return known[ext];
  }
  return format === 'text' ? 'text/plain' : 'application/octet-stream';
}
