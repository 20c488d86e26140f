import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon, terminalIcon } from '@jupyterlab/ui-components';
import {
  ReadonlyJSONObject,
  ReadonlyPartialJSONObject
} from '@lumino/coreutils';

import { AttachManager } from './attach';
import { askHoldSeconds, askPort, confirmStop } from './dialogs';
import { ForwardTab, forwardURL, parsePort } from './forward';
import { HostStateWidget } from './hoststate';
import { LogsWidget } from './logsWidget';
import { ISMDebugModel } from './model';
import { hostsOf, JobChoice, notifyError, pickHost, pickJob } from './pickers';
import { SMDebugError } from './request';
import { RunOutputWidget } from './runoutput';
import { StacksWidget } from './stacks';
import { TabManager } from './tabs';
import {
  isTransport,
  isValidHold,
  MAX_HOLD_SECONDS,
  Transport,
  TRANSPORTS
} from './types';

/**
 * The command ids of the extension; every one is in the command palette.
 */
export namespace CommandIDs {
  export const open = 'sm-debug:open';
  export const refresh = 'sm-debug:refresh';
  export const attach = 'sm-debug:attach';
  export const openPort = 'sm-debug:open-port';
  export const openLogs = 'sm-debug:open-logs';
  export const stacks = 'sm-debug:stacks';
  export const runOnHosts = 'sm-debug:run-on-hosts';
  export const hostState = 'sm-debug:host-state';
  export const toggleRemoteDebug = 'sm-debug:toggle-remote-debug';
  export const debugCopy = 'sm-debug:debug-copy';
  export const stopJob = 'sm-debug:stop-job';
}

/**
 * What every command works with.
 */
export interface ICommandContext {
  app: JupyterFrontEnd;
  model: ISMDebugModel;
  attach: AttachManager;
  tabs: TabManager;
  trans: TranslationBundle;
  panelId: string;
}

type Args = ReadonlyPartialJSONObject;

/**
 * Add every command of the extension.
 *
 * @returns their ids, for the palette
 */
export function addCommands(context: ICommandContext): string[] {
  const { app, model, attach, tabs, trans, panelId } = context;
  const { commands } = app;
  const api = model.api;

  tabs.addKind('logs', CommandIDs.openLogs);
  tabs.addKind('stacks', CommandIDs.stacks);
  tabs.addKind('state', CommandIDs.hostState);
  tabs.addKind('run', CommandIDs.runOnHosts);
  tabs.addKind('forward', CommandIDs.openPort);

  // The arguments the commands share, described once.
  const jobArg = { type: 'string', description: trans.__('Training job name') };
  const hostArg = {
    type: 'string',
    description: trans.__('Host name, e.g. algo-1')
  };
  const transportArg = {
    type: 'string',
    enum: [...TRANSPORTS],
    description: trans.__('How to reach the host')
  };
  const hostsArg = {
    type: 'array',
    items: { type: 'string' },
    description: trans.__('Hosts, e.g. ["algo-2"]; all when left out')
  };
  const described = (properties: ReadonlyJSONObject) => ({
    args: { type: 'object', properties }
  });

  /**
   * The transport a command was given, the default one when none; null (and
   * said) when it names no transport.
   */
  const transportOf = (args: Args): Transport | null => {
    const transport = args.transport ?? model.defaultTransport;
    if (isTransport(transport)) {
      return transport;
    }
    Notification.error(
      trans.__(
        'Unknown transport "%1": use one of %2.',
        String(transport),
        TRANSPORTS.join(', ')
      )
    );
    return null;
  };

  /**
   * The job a command was given, or one the user picks.
   */
  const jobOf = async (
    args: Args,
    title: string,
    choice: JobChoice = 'running'
  ): Promise<string | null> =>
    typeof args.job === 'string' && args.job
      ? args.job
      : pickJob(model, trans, title, choice);

  /**
   * The job and host a command was given, or ones the user picks.
   */
  const hostOf = async (
    args: Args,
    what: { job: string; host: (job: string) => string },
    choice: JobChoice = 'running'
  ): Promise<{ job: string; host: string } | null> => {
    const job = await jobOf(args, what.job, choice);
    if (!job) {
      return null;
    }
    const host =
      typeof args.host === 'string' && args.host
        ? args.host
        : await pickHost(model, trans, job, what.host(job));
    return host ? { job, host } : null;
  };

  commands.addCommand(CommandIDs.open, {
    label: trans.__('Show SageMaker Debug'),
    caption: trans.__('Show the SageMaker Debug sidebar'),
    describedBy: described({}),
    execute: () => {
      app.shell.activateById(panelId);
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('Refresh SageMaker Training Jobs'),
    caption: trans.__(
      'Reload the training jobs in the SageMaker Debug sidebar'
    ),
    icon: refreshIcon,
    describedBy: described({}),
    execute: async () => {
      model.start();
      await model.refresh();
    }
  });

  commands.addCommand(CommandIDs.attach, {
    label: args =>
      args.job && args.host
        ? trans.__(
            'Attach to %1 of %2',
            args.host as string,
            args.job as string
          )
        : trans.__('Attach to a SageMaker Training Host…'),
    caption: trans.__(
      'Open a terminal with a shell inside a running training container'
    ),
    icon: terminalIcon,
    describedBy: described({
      job: jobArg,
      host: hostArg,
      transport: transportArg
    }),
    execute: async args => {
      const transport = transportOf(args);
      const where =
        transport &&
        (await hostOf(args, {
          job: trans.__('Attach to which training job?'),
          host: job => trans.__('Attach to which host of %1?', job)
        }));
      if (!transport || !where) {
        return null;
      }
      const session = await attach.attach(where.job, where.host, transport);
      if (session.status === 'failed') {
        notifyError(session.error);
      }
      return session.tab;
    }
  });

  commands.addCommand(CommandIDs.openPort, {
    label: args =>
      args.job && args.host
        ? trans.__(
            'Open a Port of %1 of %2…',
            args.host as string,
            args.job as string
          )
        : trans.__('Open a Port of a SageMaker Training Host…'),
    caption: trans.__(
      'Show a web UI of a training container (TensorBoard, the profiler) in a tab'
    ),
    describedBy: described({
      job: jobArg,
      host: hostArg,
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      transport: transportArg,
      where: {
        type: 'string',
        enum: ['tab', 'browser'],
        description: trans.__('A JupyterLab tab or a new browser tab')
      }
    }),
    execute: async args => {
      const transport = transportOf(args);
      const where =
        transport &&
        (await hostOf(args, {
          job: trans.__('Open a port of which training job?'),
          host: job => trans.__('Open a port of which host of %1?', job)
        }));
      if (!transport || !where) {
        return null;
      }
      const { job, host } = where;
      let port: number | null;
      if (args.port === undefined) {
        port = await askPort(trans, host, job);
      } else {
        port = parsePort(String(args.port));
        if (port === null) {
          Notification.error(
            trans.__('"%1" is not a port: give 1 to 65535.', String(args.port))
          );
        }
      }
      if (port === null) {
        return null;
      }
      let forward;
      try {
        forward = await api.openPort(job, host, port, transport);
      } catch (reason) {
        notifyError(SMDebugError.from(reason));
        return null;
      }
      if (args.where === 'browser') {
        window.open(forwardURL(forward), '_blank', 'noopener');
        return null;
      }
      return tabs.open(
        'forward',
        ForwardTab.idOf(forward),
        () => new ForwardTab(forward, trans)
      );
    }
  });

  commands.addCommand(CommandIDs.openLogs, {
    label: args =>
      args.host
        ? trans.__('Logs of %1', args.host as string)
        : trans.__('Open Training Host Logs…'),
    caption: trans.__("Follow a training host's CloudWatch log in a tab"),
    describedBy: described({
      job: jobArg,
      host: hostArg,
      stream: {
        type: 'string',
        enum: ['training', 'ssm'],
        description: trans.__('training (default) or ssm')
      }
    }),
    execute: async args => {
      const where = await hostOf(
        args,
        {
          job: trans.__('Logs of which training job?'),
          host: job => trans.__('Logs of which host of %1?', job)
        },
        'any'
      );
      if (!where) {
        return null;
      }
      const { job, host } = where;
      const stream = args.stream === 'ssm' ? 'ssm' : 'training';
      return tabs.open(
        'logs',
        LogsWidget.idFor(job, host),
        () => new LogsWidget({ api, job, host, stream, trans }),
        tab => tab.model.setStream(stream)
      );
    }
  });

  commands.addCommand(CommandIDs.stacks, {
    label: args =>
      args.job
        ? trans.__('Stacks of All Hosts of %1', args.job as string)
        : trans.__('Stacks of All Hosts of a Training Job…'),
    caption: trans.__(
      'Python stacks of every host of a training job, identical ones grouped'
    ),
    describedBy: described({
      job: jobArg,
      hosts: hostsArg,
      transport: transportArg
    }),
    execute: async args => {
      const transport = transportOf(args);
      const job =
        transport &&
        (await jobOf(args, trans.__('Stacks of which training job?')));
      if (!transport || !job) {
        return null;
      }
      const hosts = args.hosts as string[] | undefined;
      return tabs.open(
        'stacks',
        StacksWidget.idFor(job, transport, hosts),
        () => new StacksWidget({ api, job, hosts, transport, trans }),
        tab => void tab.model.load()
      );
    }
  });

  commands.addCommand(CommandIDs.runOnHosts, {
    label: args =>
      args.job
        ? trans.__('Run a Command on All Hosts of %1', args.job as string)
        : trans.__('Run a Command on All Hosts of a Training Job…'),
    caption: trans.__(
      'One command on every host of a job, output side by side'
    ),
    describedBy: described({
      job: jobArg,
      transport: transportArg,
      shell: { type: 'string', description: trans.__('Command for sh -c') },
      draft: {
        type: 'string',
        description: trans.__('A command to offer, not run')
      }
    }),
    execute: async args => {
      const transport = transportOf(args);
      const job =
        transport &&
        (await jobOf(args, trans.__('Run a command on which training job?')));
      if (!transport || !job) {
        return null;
      }
      const shell = args.shell as string | undefined;
      const draft = args.draft as string | undefined;
      return tabs.open(
        'run',
        RunOutputWidget.idFor(job, transport),
        () => new RunOutputWidget({ api, job, transport, trans, shell, draft }),
        tab => void (shell && tab.run(shell))
      );
    }
  });

  commands.addCommand(CommandIDs.hostState, {
    label: args =>
      args.job
        ? trans.__('State of the Hosts of %1', args.job as string)
        : trans.__('State of the Hosts of a Training Job…'),
    caption: trans.__('GPUs, load, memory, disk and top process of each host'),
    describedBy: described({
      job: jobArg,
      hosts: hostsArg,
      transport: transportArg
    }),
    execute: async args => {
      const transport = transportOf(args);
      const job =
        transport &&
        (await jobOf(args, trans.__('State of the hosts of which job?')));
      const hosts =
        job &&
        ((args.hosts as string[] | undefined) ?? (await hostsOf(model, job)));
      if (!transport || !job || !hosts) {
        return null;
      }
      return tabs.open(
        'state',
        HostStateWidget.idFor(job, transport),
        () => new HostStateWidget({ api, job, hosts, transport, trans }),
        tab => tab.refresh()
      );
    }
  });

  commands.addCommand(CommandIDs.debugCopy, {
    label: args =>
      args.job
        ? trans.__('Debug a Copy of %1…', args.job as string)
        : trans.__('Debug a Copy of a SageMaker Training Job…'),
    caption: trans.__(
      'Start a copy of a training job with remote debug on, whose containers stay up for a while if it fails'
    ),
    describedBy: described({
      job: {
        type: 'string',
        description: trans.__('The training job to copy')
      },
      holdSeconds: {
        type: 'integer',
        minimum: 0,
        maximum: MAX_HOLD_SECONDS,
        description: trans.__(
          'Seconds a failed container stays up; asked for when left out'
        )
      }
    }),
    execute: async args => {
      const job = await jobOf(
        args,
        trans.__('Debug a copy of which training job?'),
        'any'
      );
      if (!job) {
        return null;
      }
      let hold = args.holdSeconds as number | undefined;
      if (hold === undefined) {
        hold =
          (await askHoldSeconds(
            trans,
            job,
            model.debugCopyHoldSeconds,
            await model.debugCopyPlan(job)
          )) ?? undefined;
        if (hold === undefined) {
          return null;
        }
      } else if (!isValidHold(hold)) {
        Notification.error(
          trans.__(
            'holdSeconds must be a whole number from 0 to %1.',
            MAX_HOLD_SECONDS
          )
        );
        return null;
      }
      model.start();
      // Started from the panel, a refusal shows inline in the job's details;
      // from the palette it would go unseen there.
      const inPanel = model.isVisible && model.isExpanded(job);
      // Show the panel now: activating it later would take the focus from
      // the new job's row.
      app.shell.activateById(panelId);
      const copy = await model.debugCopy(job, hold);
      if (!copy) {
        if (!inPanel) {
          notifyError(model.debugCopyState(job).error);
        }
        return null;
      }
      Notification.success(
        trans.__(
          'Started %1, a copy of %2 with remote debug on.',
          copy.name,
          job
        ),
        { autoClose: 6000 }
      );
      return copy.name;
    }
  });

  commands.addCommand(CommandIDs.toggleRemoteDebug, {
    label: trans.__('Toggle Remote Debug on a SageMaker Training Job…'),
    caption: trans.__(
      'Turn SageMaker remote debug on or off for a running training job'
    ),
    describedBy: described({
      job: jobArg,
      enabled: {
        type: 'boolean',
        description: trans.__('On or off; toggles when left out')
      }
    }),
    execute: async args => {
      const job = await jobOf(
        args,
        trans.__('Toggle remote debug on which training job?')
      );
      if (!job) {
        return false;
      }
      let enabled = args.enabled as boolean | undefined;
      if (typeof enabled !== 'boolean') {
        const detail = await model.loadDetail(job, true);
        if (!detail) {
          notifyError(model.detail(job)?.error);
          return false;
        }
        enabled = !detail.remote_debug?.enabled;
      }
      const done = await model.setRemoteDebug(job, enabled);
      if (done) {
        Notification.success(
          enabled
            ? trans.__('Remote debug is on for %1.', job)
            : trans.__('Remote debug is off for %1.', job),
          { autoClose: 4000 }
        );
      } else {
        notifyError(model.remoteDebug(job).error);
      }
      return done;
    }
  });

  commands.addCommand(CommandIDs.stopJob, {
    label: trans.__('Stop a SageMaker Training Job…'),
    caption: trans.__('Stop a training job in progress (asks first)'),
    describedBy: described({ job: jobArg }),
    execute: async args => {
      const job = await jobOf(args, trans.__('Stop which training job?'));
      if (!job) {
        return false;
      }
      const held = !!model.detail(job)?.job?.hold;
      if (!(await confirmStop(trans, job, held))) {
        return false;
      }
      const inPanel = model.isVisible && model.isExpanded(job);
      const done = await model.stopJob(job);
      if (done) {
        Notification.success(trans.__('Stopping %1.', job), {
          autoClose: 4000
        });
      } else if (!inPanel) {
        notifyError(model.stopState(job).error);
      }
      return done;
    }
  });

  return Object.values(CommandIDs);
}
