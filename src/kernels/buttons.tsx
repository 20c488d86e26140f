import { TranslationBundle } from '@jupyterlab/translation';
import { consoleIcon, notebookIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { useSignals } from '../components/hooks';
import { ErrorMessage } from '../components/Messages';
import { transportLabel } from '../labels';
import { Transport } from '../types';
import { IHostKernels, KernelUse } from './launcher';

/**
 * A host row's place for kernels: which host, over which transport, and
 * whether that transport reaches it now (and why not).
 */
export interface IKernelButtonsProps {
  kernels: IHostKernels;
  job: string;
  host: string;
  transport: Transport;
  ok: boolean;
  reason: string;
  reasonId: string;
  trans: TranslationBundle;
}

/**
 * "Notebook" and "Console" on a host row, a line of their own under its other
 * actions: a notebook or console whose Python runs in the host. While one starts the buttons wait ("Starting…"); a
 * refusal shows under the row (`KernelError`).
 */
export function KernelButtons(props: IKernelButtonsProps): JSX.Element {
  const { kernels, job, host, transport, ok, reason, trans } = props;
  useSignals(kernels.changed);
  const pending = kernels.state(job, host).pending?.use ?? null;
  const over = transportLabel(trans, transport);
  const buttons: {
    use: KernelUse;
    icon: typeof notebookIcon;
    label: string;
    busy: string;
    aria: string;
    caption: string;
  }[] = [
    {
      use: 'notebook',
      icon: notebookIcon,
      label: trans.__('Notebook'),
      busy:
        pending === 'switch' ? trans.__('Switching…') : trans.__('Starting…'),
      aria: trans.__('New notebook on %1 of %2 over %3', host, job, over),
      caption: trans.__('A new notebook whose Python runs in this host')
    },
    {
      use: 'console',
      icon: consoleIcon,
      label: trans.__('Console'),
      busy: trans.__('Starting…'),
      aria: trans.__('Python console on %1 of %2 over %3', host, job, over),
      caption: trans.__('A Python console that runs in this host')
    }
  ];
  return (
    <div
      className="jp-SMDebug-hostKernels"
      role="group"
      aria-label={trans.__('Python in %1', host)}
    >
      {buttons.map(({ use, icon, label, busy, aria, caption }) => {
        // A switch of the current notebook shows on the Notebook button.
        const mine =
          pending === use || (use === 'notebook' && pending === 'switch');
        return (
          <button
            key={use}
            type="button"
            className="jp-SMDebug-kernelButton"
            data-use={use}
            aria-disabled={!ok || pending !== null}
            aria-busy={mine}
            aria-describedby={!ok ? props.reasonId : undefined}
            aria-label={aria}
            title={ok ? caption : reason}
            onClick={() => {
              if (ok && pending === null) {
                void kernels.open(use, job, host, transport);
              }
            }}
          >
            <icon.react tag="span" className="jp-SMDebug-buttonIcon" />
            {mine ? busy : label}
          </button>
        );
      })}
    </div>
  );
}

/**
 * Why the last notebook or console on a host did not open, until dismissed.
 */
export function KernelError(props: {
  kernels: IHostKernels;
  job: string;
  host: string;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { kernels, job, host, trans } = props;
  useSignals(kernels.changed);
  return (
    <ErrorMessage
      error={kernels.state(job, host).error}
      trans={trans}
      className="jp-SMDebug-kernelError"
      onDismiss={() => kernels.clearError(job, host)}
    />
  );
}
