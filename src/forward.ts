import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { launchIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { ISMDebugTab } from './tabs';
import { IForward } from './types';

/** The default port of "Open port…": TensorBoard's. */
export const DEFAULT_PORT = 6006;

/** Well-known web UIs by their default port, for tab titles. */
const APPS: Record<number, string> = {
  6006: 'TensorBoard',
  8888: 'Jupyter',
  8265: 'Ray Dashboard',
  5000: 'MLflow',
  8080: 'Web UI'
};

/**
 * Whether a text is a port number (1-65535, digits only).
 */
export function parsePort(text: string): number | null {
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,4}$/.test(trimmed)) {
    return null;
  }
  const port = Number(trimmed);
  return port <= 65535 ? port : null;
}

/**
 * `TensorBoard · algo-1 · my-job`, or `Port 8081 · algo-1 · my-job`.
 */
export function forwardTitle(
  trans: TranslationBundle,
  forward: Pick<IForward, 'job' | 'host' | 'port'>
): string {
  const app = APPS[forward.port] ?? trans.__('Port %1', forward.port);
  return `${app} · ${forward.host} · ${forward.job}`;
}

/**
 * The absolute URL of a forward's proxy path.
 */
export function forwardURL(forward: IForward): string {
  // The server's url already holds its base URL: an absolute path on this origin.
  return new URL(forward.url, window.location.origin).href;
}

/**
 * A main-area tab showing a forwarded page. The container is not trusted: no
 * allow-same-origin, so the page runs in an opaque origin and can reach
 * neither JupyterLab nor the Jupyter API (the server sends the same sandbox
 * as a CSP header; docs/ports.md says what an app loses).
 */
export class ForwardTab extends MainAreaWidget<IFrame> implements ISMDebugTab {
  constructor(forward: IForward, trans: TranslationBundle) {
    const content = new IFrame({
      sandbox: [
        'allow-scripts',
        'allow-forms',
        'allow-popups',
        'allow-downloads',
        'allow-modals'
      ],
      referrerPolicy: 'same-origin'
    });
    content.url = forwardURL(forward);
    super({ content });
    this.id = ForwardTab.idOf(forward);
    this.addClass('jp-SMDebug-forwardTab');
    this.title.label = forwardTitle(trans, forward);
    this.title.caption = trans.__(
      'Port %1 of %2 in %3, over %4',
      forward.port,
      forward.host,
      forward.job,
      forward.transport.toUpperCase()
    );
    this.title.icon = launchIcon;
    this.title.closable = true;
    const { job, host, port, transport } = forward;
    this.restoreArgs = { job, host, port, transport };
  }

  /**
   * Open the port again after a reload: the server forwards it anew (or
   * answers with the live forward).
   */
  readonly restoreArgs: ReadonlyPartialJSONObject;

  static idOf(forward: Pick<IForward, 'job' | 'host' | 'port'>): string {
    return `jp-SMDebug-forward-${forward.job}-${forward.host}-${forward.port}`;
  }
}
