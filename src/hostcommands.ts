import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { ISMDebugAPI } from './api';
import { CommandIDs } from './commands';
import { HostStateWidget } from './hoststate';
import { JobsModel } from './model';
import { RunOutputWidget } from './runoutput';
import { StacksWidget } from './stacks';
import { Transport, TRANSPORTS } from './types';

export interface IHostCommandContext {
  app: JupyterFrontEnd;
  api: ISMDebugAPI;
  model: JobsModel;
  trans: TranslationBundle;
}

const JOB_ARGS = (trans: TranslationBundle) => ({
  type: 'object',
  properties: {
    job: { type: 'string', description: trans.__('Training job name') },
    hosts: {
      type: 'array',
      items: { type: 'string' },
      description: trans.__('Hosts, e.g. ["algo-2"]; all when left out')
    },
    transport: {
      type: 'string',
      enum: ['ssm', 'ssh'],
      description: trans.__('How to reach the hosts')
    }
  },
  required: ['job']
});

/**
 * The commands that look inside every host of a job at once: stacks, run a
 * command, host state. Each opens (or refreshes) a main-area tab.
 */
export function addHostCommands(context: IHostCommandContext): void {
  const { app, api, model, trans } = context;
  const open = new Map<string, Widget>();

  const show = (widget: Widget, refresh?: (w: Widget) => void) => {
    const existing = open.get(widget.id);
    if (existing && !existing.isDisposed) {
      widget.dispose();
      refresh?.(existing);
      app.shell.activateById(existing.id);
      return existing;
    }
    open.set(widget.id, widget);
    widget.disposed.connect(() => open.delete(widget.id));
    app.shell.add(widget, 'main');
    app.shell.activateById(widget.id);
    return widget;
  };

  const transportOf = (args: any): Transport | null => {
    const transport = (args.transport as Transport) ?? model.defaultTransport;
    if (!TRANSPORTS.includes(transport)) {
      Notification.error(
        trans.__('Unknown transport "%1": use ssm or ssh.', String(transport))
      );
      return null;
    }
    return transport;
  };

  app.commands.addCommand(CommandIDs.stacks, {
    label: args =>
      args.job
        ? trans.__('Stacks of All Hosts of %1', args.job as string)
        : trans.__('Stacks of All Hosts'),
    caption: trans.__(
      'Python stacks of every host of a training job, identical ones grouped'
    ),
    describedBy: { args: JOB_ARGS(trans) },
    isEnabled: args => typeof args.job === 'string',
    execute: args => {
      const transport = transportOf(args);
      if (!transport) {
        return null;
      }
      const widget = new StacksWidget({
        api,
        job: args.job as string,
        hosts: args.hosts as string[] | undefined,
        transport,
        trans
      });
      return show(widget, w => void (w as StacksWidget).model.load());
    }
  });

  app.commands.addCommand(CommandIDs.runOnHosts, {
    label: args =>
      args.job
        ? trans.__('Run a Command on All Hosts of %1', args.job as string)
        : trans.__('Run a Command on All Hosts'),
    caption: trans.__(
      'One command on every host of a job, output side by side'
    ),
    describedBy: {
      args: {
        ...JOB_ARGS(trans),
        properties: {
          ...JOB_ARGS(trans).properties,
          shell: { type: 'string', description: trans.__('Command for sh -c') }
        }
      }
    },
    isEnabled: args => typeof args.job === 'string',
    execute: args => {
      const transport = transportOf(args);
      if (!transport) {
        return null;
      }
      const shell = args.shell as string | undefined;
      const widget = new RunOutputWidget({
        api,
        job: args.job as string,
        transport,
        trans,
        shell
      });
      return show(widget, w => {
        if (shell) {
          void (w as RunOutputWidget).run(shell);
        }
      });
    }
  });

  app.commands.addCommand(CommandIDs.hostState, {
    label: args =>
      args.job
        ? trans.__('State of the Hosts of %1', args.job as string)
        : trans.__('State of the Hosts'),
    caption: trans.__('GPUs, load, memory, disk and top process of each host'),
    describedBy: { args: JOB_ARGS(trans) },
    isEnabled: args => typeof args.job === 'string',
    execute: async args => {
      const transport = transportOf(args);
      if (!transport) {
        return null;
      }
      const job = args.job as string;
      let hosts = args.hosts as string[] | undefined;
      if (!hosts) {
        const detail = await model.loadDetail(job);
        if (!detail) {
          const error = model.detail(job)?.error;
          if (error) {
            Notification.error(`${error.message} ${error.hint}`);
          }
          return null;
        }
        hosts = detail.hosts.map(h => h.name);
      }
      const widget = new HostStateWidget({ api, job, hosts, transport, trans });
      return show(widget, w => (w as HostStateWidget).refresh());
    }
  });
}
