import { ISignal } from '@lumino/signaling';

/**
 * The kernel spec names the server gives kernels in hosts (openapi.yaml,
 * `POST .../kernels`).
 */
export const HOST_KERNEL_NAME = /^sm-debug-[0-9a-f]{12}$/;

/**
 * Whether a kernel runs in a host.
 */
export function isHostKernel(
  kernel: { readonly name: string } | null | undefined
): boolean {
  return !!kernel && HOST_KERNEL_NAME.test(kernel.name);
}

/**
 * What the guard needs of a cell model (JupyterLab's `ICellModel`).
 */
export interface ITrustable {
  readonly type: string;
  trusted: boolean;
  readonly stateChanged: ISignal<unknown, { name: string; newValue?: unknown }>;
  getMetadata(key: string): unknown;
  deleteMetadata(key: string): unknown;
}

/**
 * What the guard needs of a notebook's or console's session context.
 */
export interface ISessionLike {
  readonly session: {
    readonly kernel: { readonly name: string } | null;
  } | null;
  readonly kernelChanged: ISignal<unknown, unknown>;
}

/**
 * Keep the code cells of a notebook or console untrusted while its kernel
 * runs in a host.
 *
 * JupyterLab trusts a cell the user runs (and every cell of a console): its
 * outputs render as trusted, where HTML's scripts run and
 * `application/javascript` is evaluated, on the Jupyter origin. The server
 * already sanitises what a container's kernel sends; this is the second
 * line: as soon as such a cell is marked trusted it is marked untrusted
 * again (before its outputs arrive), and its `trusted` metadata is removed so
 * that the saved notebook is not signed as trusted either. "Trust Notebook"
 * is undone the same way while the kernel runs in a host.
 *
 * @param cells the cell models there now
 * @returns `track`, to call with each cell model added later
 */
export function untrustedWhileOnHost(
  sessionContext: ISessionLike,
  cells: () => Iterable<ITrustable>
): (cell: ITrustable) => void {
  const onHost = () => isHostKernel(sessionContext.session?.kernel);
  const tracked = new WeakSet<ITrustable>();
  const distrust = (cell: ITrustable) => {
    if (cell.type !== 'code') {
      return;
    }
    cell.trusted = false;
    if (cell.getMetadata('trusted') !== undefined) {
      cell.deleteMetadata('trusted');
    }
  };
  const track = (cell: ITrustable) => {
    if (tracked.has(cell)) {
      return;
    }
    tracked.add(cell);
    cell.stateChanged.connect((_, change) => {
      if (change.name === 'trusted' && change.newValue === true && onHost()) {
        distrust(cell);
      }
    });
    if (onHost()) {
      distrust(cell);
    }
  };
  const trackAll = () => {
    for (const cell of cells()) {
      track(cell);
      if (onHost()) {
        distrust(cell);
      }
    }
  };
  trackAll();
  sessionContext.kernelChanged.connect(trackAll);
  return track;
}
