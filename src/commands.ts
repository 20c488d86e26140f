import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  folderIcon,
  LabIcon,
  refreshIcon,
  terminalIcon
} from '@jupyterlab/ui-components';
import {
  ReadonlyJSONObject,
  ReadonlyPartialJSONObject
} from '@lumino/coreutils';

import { AttachManager } from './attach';
import { askHoldSeconds, askPort, confirmStop } from './dialogs';
import type { IHostFiles } from './files/service';
import { ForwardTab, forwardURL, parsePort } from './forward';
import { HostStateWidget } from './hoststate';
import { KERNEL_COMMANDS, kernelCommandTexts } from './kernels/commands';
import { IHostKernels } from './kernels/launcher';
import { LogsWidget } from './logsWidget';
import { ISMDebugModel } from './model';
import { hostsOf, JobChoice, notifyError, pickHost, pickJob } from './pickers';
import { SMDebugError } from './request';
import { RunOutputWidget } from './runoutput';
import { StacksWidget } from './stacks';
import { TabManager } from './tabs';
import {
  IForward,
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
  export const files = 'sm-debug:files';
  export const openNotebook = KERNEL_COMMANDS.notebook;
  export const switchNotebook = KERNEL_COMMANDS.switch;
  export const openConsole = KERNEL_COMMANDS.console;
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
  /** A host's files in JupyterLab (src/files/); null without a file browser. */
  files?: IHostFiles | null;
  /** Notebooks and consoles on kernels in hosts; without, no such commands. */
  kernels?: IHostKernels;
}

type Args = ReadonlyPartialJSONObject;

/**
 * A non-empty string argument, or null.
 */
function given(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

/**
 * Add every command of the extension.
 *
 * @returns their ids, for the palette
 */
export function addCommands(context: ICommandContext): string[] {
  const { app, model, attach, tabs, trans, panelId, kernels } = context;
  const { commands } = app;
  const api = model.api;

  tabs.addKind('logs', CommandIDs.openLogs);
  tabs.addKind('stacks', CommandIDs.stacks);
  tabs.addKind('state', CommandIDs.hostState);
  tabs.addKind('run', CommandIDs.runOnHosts);
  tabs.addKind('forward', CommandIDs.openPort);
  tabs.addKind('files', CommandIDs.files);

  // The arguments the commands share, described once.
  const text = (description: string) => ({ type: 'string', description });
  const oneOf = (values: readonly string[], description: string) => ({
    type: 'string',
    enum: [...values],
    description
  });
  const jobArg = text(trans.__('Training job name'));
  const hostArg = text(trans.__('Host name, e.g. algo-1'));
  const transportArg = oneOf(TRANSPORTS, trans.__('How to reach the host'));
  const hostsArg = {
    type: 'array',
    items: { type: 'string' },
    description: trans.__('Hosts, e.g. ["algo-2"]; all when left out')
  };

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
   * A label that names the job (and host) a command was given, or says what
   * it asks for.
   */
  const named =
    (
      withArgs: (job: string, host: string) => string,
      otherwise: string,
      host = false
    ) =>
    (args: Args) => {
      const job = given(args.job);
      const name = given(args.host);
      return job && (name || !host) ? withArgs(job, name ?? '') : otherwise;
    };

  /**
   * What a command works on, given in its arguments or picked: a job, a host
   * of it, and the transport to reach it.
   */
  interface ITarget {
    job: string;
    host: string;
    transport: Transport;
  }

  /**
   * Add a command. `needs` says what it works on and how to ask for what the
   * arguments leave out: `job` is the job picker's title, `host` the host
   * picker's; `run` gets the target, or is not called when the user cancels.
   */
  const add = (
    id: string,
    spec: {
      label: string | ((args: Args) => string);
      caption: string;
      icon?: LabIcon;
      args: ReadonlyJSONObject;
      needs?: {
        job: string;
        choice?: JobChoice;
        host?: (job: string) => string;
        transport?: boolean;
      };
      run: (target: ITarget, args: Args) => unknown;
    }
  ) => {
    const { needs, run } = spec;
    commands.addCommand(id, {
      label: spec.label,
      caption: spec.caption,
      icon: spec.icon,
      describedBy: { args: { type: 'object', properties: spec.args } },
      execute: async args => {
        const target = { job: '', host: '', transport: model.defaultTransport };
        if (needs?.transport) {
          const transport = transportOf(args);
          if (!transport) {
            return null;
          }
          target.transport = transport;
        }
        if (needs) {
          const { job, choice, host } = needs;
          target.job =
            given(args.job) ??
            (await pickJob(model, trans, job, choice ?? 'running')) ??
            '';
          const ask = host && target.job ? host(target.job) : null;
          target.host =
            given(args.host) ??
            (ask && (await pickHost(model, trans, target.job, ask))) ??
            '';
        }
        if (needs && (!target.job || (needs.host && !target.host))) {
          return null;
        }
        return run(target, args);
      }
    });
  };

  add(CommandIDs.open, {
    label: trans.__('Show SageMaker Debug'),
    caption: trans.__('Show the SageMaker Debug sidebar'),
    args: {},
    run: () => app.shell.activateById(panelId)
  });

  add(CommandIDs.refresh, {
    label: trans.__('Refresh SageMaker Training Jobs'),
    caption: trans.__(
      'Reload the training jobs in the SageMaker Debug sidebar'
    ),
    icon: refreshIcon,
    args: {},
    run: async () => {
      model.start();
      await model.refresh();
    }
  });

  add(CommandIDs.attach, {
    label: named(
      (job, host) => trans.__('Attach to %1 of %2', host, job),
      trans.__('Attach to a SageMaker Training Host…'),
      true
    ),
    caption: trans.__(
      'Open a terminal with a shell inside a running training container'
    ),
    icon: terminalIcon,
    args: { job: jobArg, host: hostArg, transport: transportArg },
    needs: {
      job: trans.__('Attach to which training job?'),
      host: job => trans.__('Attach to which host of %1?', job),
      transport: true
    },
    run: async ({ job, host, transport }) => {
      const session = await attach.attach(job, host, transport);
      if (session.status === 'failed') {
        notifyError(session.error);
      }
      return session.tab;
    }
  });

  add(CommandIDs.openPort, {
    label: named(
      (job, host) => trans.__('Open a Port of %1 of %2…', host, job),
      trans.__('Open a Port of a SageMaker Training Host…'),
      true
    ),
    caption: trans.__(
      'Show a web UI of a training container (TensorBoard, the profiler) in a tab'
    ),
    args: {
      job: jobArg,
      host: hostArg,
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      transport: transportArg,
      where: oneOf(
        ['tab', 'browser'],
        trans.__('A JupyterLab tab or a new browser tab')
      )
    },
    needs: {
      job: trans.__('Open a port of which training job?'),
      host: job => trans.__('Open a port of which host of %1?', job),
      transport: true
    },
    run: async ({ job, host, transport }, args) => {
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
      let forward: IForward;
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

  add(CommandIDs.files, {
    label: named(
      (job, host) => trans.__('Files of %1 of %2', host, job),
      trans.__('Files of a SageMaker Training Host…'),
      true
    ),
    caption: trans.__(
      "Browse, open, edit, upload and download a training container's files"
    ),
    icon: folderIcon,
    args: { job: jobArg, host: hostArg, transport: transportArg },
    needs: {
      job: trans.__('Files of which training job?'),
      host: job => trans.__('Files of which host of %1?', job),
      transport: true
    },
    run: ({ job, host, transport }) => {
      const files = context.files;
      if (!files) {
        Notification.error(
          trans.__(
            "A host's files need JupyterLab's file browser and document manager, which are not loaded here."
          )
        );
        return null;
      }
      return tabs.open(
        'files',
        files.idFor(job, host),
        () => files.createTab(job, host, transport),
        tab => tab.setTransport(transport)
      );
    }
  });

  add(CommandIDs.openLogs, {
    label: named(
      (job, host) => trans.__('Logs of %1', host),
      trans.__('Open Training Host Logs…'),
      true
    ),
    caption: trans.__("Follow a training host's CloudWatch log in a tab"),
    args: {
      job: jobArg,
      host: hostArg,
      stream: oneOf(['training', 'ssm'], trans.__('training (default) or ssm'))
    },
    needs: {
      job: trans.__('Logs of which training job?'),
      host: job => trans.__('Logs of which host of %1?', job),
      choice: 'any'
    },
    run: ({ job, host }, args) => {
      const stream = args.stream === 'ssm' ? 'ssm' : 'training';
      return tabs.open(
        'logs',
        LogsWidget.idFor(job, host),
        () => new LogsWidget({ api, job, host, stream, trans }),
        tab => tab.model.setStream(stream)
      );
    }
  });

  add(CommandIDs.stacks, {
    label: named(
      job => trans.__('Stacks of All Hosts of %1', job),
      trans.__('Stacks of All Hosts of a Training Job…')
    ),
    caption: trans.__(
      'Python stacks of every host of a training job, identical ones grouped'
    ),
    args: { job: jobArg, hosts: hostsArg, transport: transportArg },
    needs: { job: trans.__('Stacks of which training job?'), transport: true },
    run: ({ job, transport }, args) => {
      const hosts = args.hosts as string[] | undefined;
      return tabs.open(
        'stacks',
        StacksWidget.idFor(job, transport, hosts),
        () => new StacksWidget({ api, job, hosts, transport, trans }),
        tab => void tab.model.load()
      );
    }
  });

  add(CommandIDs.runOnHosts, {
    label: named(
      job => trans.__('Run a Command on All Hosts of %1', job),
      trans.__('Run a Command on All Hosts of a Training Job…')
    ),
    caption: trans.__(
      'One command on every host of a job, output side by side'
    ),
    args: {
      job: jobArg,
      transport: transportArg,
      shell: text(trans.__('Command for sh -c')),
      draft: text(trans.__('A command to offer, not run'))
    },
    needs: {
      job: trans.__('Run a command on which training job?'),
      transport: true
    },
    run: ({ job, transport }, args) => {
      const shell = given(args.shell) ?? undefined;
      const draft = given(args.draft) ?? undefined;
      return tabs.open(
        'run',
        RunOutputWidget.idFor(job, transport),
        () => new RunOutputWidget({ api, job, transport, trans, shell, draft }),
        tab => void (shell && tab.run(shell))
      );
    }
  });

  add(CommandIDs.hostState, {
    label: named(
      job => trans.__('State of the Hosts of %1', job),
      trans.__('State of the Hosts of a Training Job…')
    ),
    caption: trans.__('GPUs, load, memory, disk and top process of each host'),
    args: { job: jobArg, hosts: hostsArg, transport: transportArg },
    needs: {
      job: trans.__('State of the hosts of which job?'),
      transport: true
    },
    run: async ({ job, transport }, args) => {
      const hosts =
        (args.hosts as string[] | undefined) ?? (await hostsOf(model, job));
      return hosts
        ? tabs.open(
            'state',
            HostStateWidget.idFor(job, transport),
            () => new HostStateWidget({ api, job, hosts, transport, trans }),
            tab => tab.refresh()
          )
        : null;
    }
  });

  add(CommandIDs.debugCopy, {
    label: named(
      job => trans.__('Debug a Copy of %1…', job),
      trans.__('Debug a Copy of a SageMaker Training Job…')
    ),
    caption: trans.__(
      'Start a copy of a training job with remote debug on, whose containers stay up for a while if it fails'
    ),
    args: {
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
    },
    needs: {
      job: trans.__('Debug a copy of which training job?'),
      choice: 'any'
    },
    run: async ({ job }, args) => {
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

  add(CommandIDs.toggleRemoteDebug, {
    label: trans.__('Toggle Remote Debug on a SageMaker Training Job…'),
    caption: trans.__(
      'Turn SageMaker remote debug on or off for a running training job'
    ),
    args: {
      job: jobArg,
      enabled: {
        type: 'boolean',
        description: trans.__('On or off; toggles when left out')
      }
    },
    needs: { job: trans.__('Toggle remote debug on which training job?') },
    run: async ({ job }, args) => {
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

  add(CommandIDs.stopJob, {
    label: trans.__('Stop a SageMaker Training Job…'),
    caption: trans.__('Stop a training job in progress (asks first)'),
    args: { job: jobArg },
    needs: { job: trans.__('Stop which training job?') },
    run: async ({ job }) => {
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

  // Kernels in hosts: a new notebook, the current notebook switched, a
  // console. A refusal also shows in the host's row when the panel shows it.
  for (const text of kernels ? kernelCommandTexts(trans) : []) {
    add(text.id, {
      label: named(text.label, text.otherwise, true),
      caption: text.caption,
      icon: text.icon,
      args: { job: jobArg, host: hostArg, transport: transportArg },
      needs: {
        job: trans.__('A Python kernel in which training job?'),
        host: job => trans.__('A Python kernel in which host of %1?', job),
        transport: true
      },
      run: async ({ job, host, transport }) => {
        const opened = await kernels!.open(text.use, job, host, transport);
        if (!opened) {
          notifyError(kernels!.state(job, host).error);
        }
        return opened?.start.kernel.id ?? null;
      }
    });
  }

  return Object.values(CommandIDs);
}
