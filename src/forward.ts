import { JupyterFrontEnd } from '@jupyterlab/application';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { launchIcon } from '@jupyterlab/ui-components';

/**
 * A live port forward, as the server lists it.
 */
export interface IForward {
  job: string;
  host: string;
  port: number;
  transport: 'ssm' | 'ssh';
  local_port: number;
  target: string;
  /** The proxy path for the browser, under the server's base URL. */
  url: string;
  created: number;
  reused?: boolean;
}

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
export class ForwardTab extends MainAreaWidget<IFrame> {
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
  }

  static idOf(forward: Pick<IForward, 'job' | 'host' | 'port'>): string {
    return `jp-SMDebug-forward-${forward.job}-${forward.host}-${forward.port}`;
  }
}

/**
 * Show a forward in a JupyterLab tab (the live one when open) or in a new
 * browser tab.
 */
export function showForward(
  app: JupyterFrontEnd,
  forward: IForward,
  trans: TranslationBundle,
  where: 'tab' | 'browser' = 'tab'
): ForwardTab | null {
  if (where === 'browser') {
    window.open(forwardURL(forward), '_blank', 'noopener');
    return null;
  }
  const id = ForwardTab.idOf(forward);
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id && widget instanceof ForwardTab) {
      app.shell.activateById(id);
      return widget;
    }
  }
  const tab = new ForwardTab(forward, trans);
  app.shell.add(tab, 'main');
  app.shell.activateById(id);
  return tab;
}

/**
 * The "Open port…" dialog: a port number, 6006 by default. Null when cancelled.
 */
export async function askPort(
  trans: TranslationBundle,
  host: string,
  job: string
): Promise<number | null> {
  const { InputDialog, Notification } = await import('@jupyterlab/apputils');
  const answer = await InputDialog.getText({
    title: trans.__('Open a port of %1 (%2)', host, job),
    label: trans.__(
      'Port the app listens on in the container (6006: TensorBoard)'
    ),
    text: String(DEFAULT_PORT),
    okLabel: trans.__('Open')
  });
  if (!answer.button.accept || answer.value === null) {
    return null;
  }
  const port = parsePort(answer.value);
  if (port === null) {
    Notification.error(
      trans.__('"%1" is not a port number: give 1 to 65535.', answer.value)
    );
  }
  return port;
}
