import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import * as React from 'react';

import { useSignals } from './components/hooks';
import { HostView, hostViewId, RequestModel } from './hostviews';
import { IHostState, Transport } from './types';

/**
 * A main-area tab with one row per host of a job: GPUs, load, memory, the
 * disk of /opt/ml and the busiest process, each host read on its own.
 */
export class HostStateWidget extends HostView {
  constructor(options: HostStateWidget.IOptions) {
    super(
      options,
      options.trans.__('Hosts'),
      options.trans.__('State of the hosts of %1', options.job)
    );
    const { api, job, hosts, transport } = options;
    this.rows = hosts.map(host => ({
      host,
      model: new RequestModel(() => api.hostState(job, host, transport))
    }));
    this.id = HostStateWidget.idFor(job, transport);
    this.refresh();
  }

  readonly rows: { host: string; model: RequestModel<IHostState> }[];

  get restoreArgs(): ReadonlyPartialJSONObject {
    const { job, transport } = this;
    return { job, transport, hosts: this.rows.map(row => row.host) };
  }

  refresh(): void {
    for (const row of this.rows) {
      void row.model.load();
    }
  }

  render(): JSX.Element {
    return (
      <div className="jp-SMDebug-hostViewBody">
        <div className="jp-SMDebug-hostViewToolbar">
          <button
            type="button"
            className="jp-SMDebug-secondaryButton"
            onClick={() => this.refresh()}
          >
            <refreshIcon.react tag="span" className="jp-SMDebug-buttonIcon" />
            {this.trans.__('Read again')}
          </button>
        </div>
        <table className="jp-SMDebug-stateTable">
          <thead>
            <tr>
              <th scope="col">{this.trans.__('Host')}</th>
              <th scope="col">{this.trans.__('GPUs')}</th>
              <th scope="col">{this.trans.__('Load')}</th>
              <th scope="col">{this.trans.__('Memory')}</th>
              <th scope="col">{this.trans.__('Disk /opt/ml')}</th>
              <th scope="col">{this.trans.__('Top process')}</th>
            </tr>
          </thead>
          <tbody>
            {this.rows.map(row => (
              <StateRow
                key={row.host}
                host={row.host}
                model={row.model}
                trans={this.trans}
              />
            ))}
          </tbody>
        </table>
      </div>
    );
  }
}

export namespace HostStateWidget {
  export interface IOptions extends HostView.IOptions {
    hosts: string[];
  }

  export function idFor(job: string, transport: Transport): string {
    return hostViewId('state', job, transport);
  }
}

const GIB = 1024 ** 3;

function gib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined
    ? '?'
    : `${(bytes / GIB).toFixed(1)} GiB`;
}

function StateRow(props: {
  host: string;
  model: RequestModel<IHostState>;
  trans: TranslationBundle;
}): JSX.Element {
  const { host, model, trans } = props;
  useSignals(model.changed);
  const state = model.result;
  if (model.error) {
    return (
      <tr data-host={host}>
        <th scope="row">{host}</th>
        <td colSpan={5} className="jp-SMDebug-stateError" role="alert">
          {model.error.message} {model.error.hint}
        </td>
      </tr>
    );
  }
  if (!state) {
    return (
      <tr data-host={host}>
        <th scope="row">{host}</th>
        <td colSpan={5} role="status">
          {trans.__('Reading…')}
        </td>
      </tr>
    );
  }
  const memory = state.memory;
  const used =
    memory.total_bytes !== null && memory.available_bytes !== null
      ? memory.total_bytes - memory.available_bytes
      : null;
  const top = state.processes[0];
  return (
    <tr data-host={host} aria-busy={model.pending}>
      <th scope="row">{host}</th>
      <td>
        {state.gpus.length ? (
          <ul className="jp-SMDebug-gpuList">
            {state.gpus.map(gpu => (
              <li key={gpu.index} title={gpu.name}>
                {trans.__(
                  'GPU %1: %2% · %3/%4 MiB · %5 °C',
                  gpu.index,
                  gpu.utilization_percent ?? '?',
                  gpu.memory_used_mib ?? '?',
                  gpu.memory_total_mib ?? '?',
                  gpu.temperature_c ?? '?'
                )}
              </li>
            ))}
          </ul>
        ) : (
          (state.gpu_note ?? trans.__('No GPU'))
        )}
      </td>
      <td>
        {state.load ? state.load.join(' ') : '?'}
        {state.cpus ? ` / ${state.cpus} CPUs` : ''}
      </td>
      <td>
        {gib(used)} / {gib(memory.total_bytes)}
      </td>
      <td>
        {state.disk
          ? `${gib(state.disk.used_bytes)} / ${gib(state.disk.total_bytes)}`
          : '?'}
      </td>
      <td className="jp-SMDebug-stateProcess" title={top?.command}>
        {top ? `${top.cpu_percent ?? '?'}% ${top.command}` : ''}
      </td>
    </tr>
  );
}
