import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { Transport } from '../types';

/**
 * Which all-hosts tab a job detail button opens.
 */
export type AllHostsView = 'stacks' | 'run' | 'state';

/**
 * "Stacks of all hosts", "Run on all hosts", "Host state": one look inside
 * every host of a running job.
 */
export function AllHostsActions(props: {
  job: string;
  transport: Transport;
  open: (view: AllHostsView, transport: Transport) => void;
  trans: TranslationBundle;
  /** Why the transport cannot reach the hosts now; null when it can. */
  unavailable?: { reason: string; reasonId: string } | null;
}): JSX.Element {
  const { job, transport, open, trans, unavailable } = props;
  const buttons: [AllHostsView, string, string][] = [
    [
      'stacks',
      trans.__('Stacks of all hosts'),
      trans.__('Python stacks of every host of %1, grouped', job)
    ],
    [
      'run',
      trans.__('Run on all hosts'),
      trans.__('Run one command on every host of %1', job)
    ],
    [
      'state',
      trans.__('Host state'),
      trans.__('GPUs, load, memory and disk of every host of %1', job)
    ]
  ];
  return (
    <div className="jp-SMDebug-allHosts">
      {buttons.map(([view, label, caption]) => (
        <button
          key={view}
          type="button"
          className="jp-SMDebug-secondaryButton"
          title={unavailable ? unavailable.reason || caption : caption}
          aria-label={caption}
          aria-disabled={!!unavailable}
          aria-describedby={unavailable?.reasonId}
          onClick={() => {
            if (!unavailable) {
              open(view, transport);
            }
          }}
        >
          {label}
        </button>
      ))}
    </div>
  );
}
