import { ISignal } from '@lumino/signaling';
import * as React from 'react';

/**
 * Re-render the component whenever one of the signals is emitted.
 */
export function useSignals(...signals: ISignal<unknown, unknown>[]): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const slot = () => setTick(tick => tick + 1);
    for (const signal of signals) {
      signal.connect(slot);
    }
    return () => {
      for (const signal of signals) {
        signal.disconnect(slot);
      }
    };
    // The signals belong to long-lived objects: connect once per set of them.
  }, signals);
}
