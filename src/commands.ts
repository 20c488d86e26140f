import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon, terminalIcon } from '@jupyterlab/ui-components';

import { SMDebugAPI } from './api';
import { AttachManager } from './attach';
import { askHoldSeconds, confirmStop } from './dialogs';
import { askPort, parsePort, showForward } from './forward';
import { JobsModel } from './model';
import { SMDebugError } from './request';
import {
  isFinished,
  isValidHold,
  MAX_HOLD_SECONDS,
  LogStream,
  Transport,
  TRANSPORTS
} from './types';

/**
 * The command ids of the extension.
 */
export namespace CommandIDs {
  export const refresh = 'sm-debug:refresh';
  export const attach = 'sm-debug:attach';
  export const toggleRemoteDebug = 'sm-debug:toggle-remote-debug';
  export const debugCopy = 'sm-debug:debug-copy';
  export const open = 'sm-debug:open';
  export const stopJob = 'sm-debug:stop-job';
  export const openLogs = 'sm-debug:open-logs';
  export const stacks = 'sm-debug:stacks';
  export const runOnHosts = 'sm-debug:run-on-hosts';
  export const hostState = 'sm-debug:host-state';
  export const openPort = 'sm-debug:open-port';
}

export interface ICommandContext {
  app: JupyterFrontEnd;
  model: JobsModel;
  attach: AttachManager;
  trans: TranslationBundle;
  panelId: string;
  /** Open (or show) the logs tab of a host. */
  openLogs: (job: string, host: string, stream: LogStream) => Promise<unknown>;
}

/**
 * Add the palette commands: refresh, attach, toggle remote debug, debug a
 * copy, open the panel.
 */
export function addCommands(context: ICommandContext): void {
  const { app, model, attach, trans, panelId, openLogs } = context;
  const { commands } = app;

  const notify = (error: SMDebugError | null | undefined) => {
    if (error) {
      Notification.error(
        error.hint ? `${error.message} ${error.hint}` : error.message,
        { autoClose: false }
      );
    }
  };

  /**
   * Ask for a running job when the command was not given one.
   */
  const pickRunningJob = async (title: string): Promise<string | null> => {
    model.start();
    if (!model.loaded) {
      await model.refresh();
    }
    notify(model.error);
    const running = model.jobs
      .filter(job => job.status === 'InProgress')
      .map(job => job.name);
    if (running.length === 0) {
      if (!model.error) {
        Notification.warning(
          trans.__('No running training job is listed in the sidebar.')
        );
      }
      return null;
    }
    const answer = await InputDialog.getItem({
      title,
      items: running,
      label: trans.__('Training job')
    });
    return answer.button.accept && answer.value ? answer.value : null;
  };

  /**
   * Ask for any listed job, finished ones first (the usual reason to debug a
   * copy is a run that failed).
   */
  const pickAnyJob = async (title: string): Promise<string | null> => {
    model.start();
    if (!model.loaded) {
      await model.refresh();
    }
    notify(model.error);
    const jobs = model.jobs.filter(job => job.status !== 'Deleting');
    const names = [
      ...jobs.filter(job => isFinished(job.status)),
      ...jobs.filter(job => !isFinished(job.status))
    ].map(job => job.name);
    if (names.length === 0) {
      if (!model.error) {
        Notification.warning(
          trans.__('No training job is listed in the sidebar.')
        );
      }
      return null;
    }
    const answer = await InputDialog.getItem({
      title,
      items: names,
      label: trans.__('Training job')
    });
    return answer.button.accept && answer.value ? answer.value : null;
  };

  commands.addCommand(CommandIDs.open, {
    label: trans.__('Show SageMaker Debug'),
    caption: trans.__('Show the SageMaker Debug sidebar'),
    describedBy: { args: { type: 'object', properties: {} } },
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
    describedBy: { args: { type: 'object', properties: {} } },
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
    describedBy: {
      args: {
        type: 'object',
        properties: {
          job: { type: 'string', description: trans.__('Training job name') },
          host: {
            type: 'string',
            description: trans.__('Host name, e.g. algo-1')
          },
          transport: {
            type: 'string',
            enum: ['ssm', 'ssh'],
            description: trans.__('How to reach the host')
          }
        }
      }
    },
    execute: async args => {
      let job = args.job as string | undefined;
      let host = args.host as string | undefined;
      const transport =
        (args.transport as Transport | undefined) ?? model.defaultTransport;
      if (!TRANSPORTS.includes(transport)) {
        Notification.error(
          trans.__('Unknown transport "%1": use ssm or ssh.', String(transport))
        );
        return null;
      }
      if (!job) {
        job =
          (await pickRunningJob(trans.__('Attach to which training job?'))) ??
          undefined;
        if (!job) {
          return null;
        }
      }
      if (!host) {
        const detail = await model.loadDetail(job);
        if (!detail) {
          notify(model.detail(job)?.error);
          return null;
        }
        const hosts = detail.hosts.map(h => h.name);
        if (hosts.length === 1) {
          host = hosts[0];
        } else {
          const answer = await InputDialog.getItem({
            title: trans.__('Attach to which host of %1?', job),
            items: hosts,
            label: trans.__('Host')
          });
          if (!answer.button.accept || !answer.value) {
            return null;
          }
          host = answer.value;
        }
      }
      const session = await attach.attach(job, host, transport);
      if (session.status === 'failed') {
        notify(session.error);
      }
      return session.tab;
    }
  });

  const forwards = new SMDebugAPI();
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
    describedBy: {
      args: {
        type: 'object',
        properties: {
          job: { type: 'string', description: trans.__('Training job name') },
          host: {
            type: 'string',
            description: trans.__('Host name, e.g. algo-1')
          },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          transport: { type: 'string', enum: ['ssm', 'ssh'] },
          where: {
            type: 'string',
            enum: ['tab', 'browser'],
            description: trans.__('A JupyterLab tab or a new browser tab')
          }
        }
      }
    },
    execute: async args => {
      let job = args.job as string | undefined;
      let host = args.host as string | undefined;
      const transport =
        (args.transport as Transport | undefined) ?? model.defaultTransport;
      if (!job) {
        job =
          (await pickRunningJob(
            trans.__('Open a port of which training job?')
          )) ?? undefined;
        if (!job) {
          return null;
        }
      }
      if (!host) {
        const detail = await model.loadDetail(job);
        if (!detail) {
          notify(model.detail(job)?.error);
          return null;
        }
        const hosts = detail.hosts.map(h => h.name);
        const answer =
          hosts.length === 1
            ? null
            : await InputDialog.getItem({
                title: trans.__('Open a port of which host of %1?', job),
                items: hosts,
                label: trans.__('Host')
              });
        host = answer === null ? hosts[0] : (answer.value ?? undefined);
        if (!host || (answer && !answer.button.accept)) {
          return null;
        }
      }
      const port =
        args.port !== undefined
          ? parsePort(String(args.port))
          : await askPort(trans, host, job);
      if (port === null) {
        return null;
      }
      try {
        const forward = await forwards.openPort(job, host, port, transport);
        return showForward(
          app,
          forward,
          trans,
          args.where === 'browser' ? 'browser' : 'tab'
        );
      } catch (reason) {
        notify(reason instanceof SMDebugError ? reason : null);
        return null;
      }
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
    describedBy: {
      args: {
        type: 'object',
        properties: {
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
        }
      }
    },
    execute: async args => {
      let job = args.job as string | undefined;
      if (!job) {
        job =
          (await pickAnyJob(trans.__('Debug a copy of which training job?'))) ??
          undefined;
        if (!job) {
          return null;
        }
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
          notify(model.debugCopyState(job).error);
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
    describedBy: {
      args: {
        type: 'object',
        properties: {
          job: { type: 'string', description: trans.__('Training job name') },
          enabled: {
            type: 'boolean',
            description: trans.__('On or off; toggles when left out')
          }
        }
      }
    },
    execute: async args => {
      let job = args.job as string | undefined;
      if (!job) {
        job =
          (await pickRunningJob(
            trans.__('Toggle remote debug on which training job?')
          )) ?? undefined;
        if (!job) {
          return false;
        }
      }
      let enabled = args.enabled as boolean | undefined;
      if (typeof enabled !== 'boolean') {
        const detail = await model.loadDetail(job, true);
        if (!detail) {
          notify(model.detail(job)?.error);
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
        notify(model.remoteDebug(job).error);
      }
      return done;
    }
  });

  commands.addCommand(CommandIDs.stopJob, {
    label: trans.__('Stop a SageMaker Training Job…'),
    caption: trans.__('Stop a training job in progress (asks first)'),
    describedBy: {
      args: {
        type: 'object',
        properties: {
          job: { type: 'string', description: trans.__('Training job name') }
        }
      }
    },
    execute: async args => {
      let job = args.job as string | undefined;
      if (!job) {
        job =
          (await pickRunningJob(trans.__('Stop which training job?'))) ??
          undefined;
        if (!job) {
          return false;
        }
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
        notify(model.stopState(job).error);
      }
      return done;
    }
  });

  commands.addCommand(CommandIDs.openLogs, {
    label: args =>
      args.host
        ? trans.__('Logs of %1', args.host as string)
        : trans.__('Open Training Host Logs'),
    caption: trans.__("Follow a training host's CloudWatch log in a tab"),
    describedBy: {
      args: {
        type: 'object',
        required: ['job', 'host'],
        properties: {
          job: { type: 'string', description: trans.__('Training job name') },
          host: { type: 'string', description: trans.__('Host: algo-1 …') },
          stream: {
            type: 'string',
            enum: ['training', 'ssm'],
            description: trans.__('training (default) or ssm')
          }
        }
      }
    },
    execute: args => {
      const job = args.job as string | undefined;
      const host = args.host as string | undefined;
      if (!job || !host) {
        Notification.error(trans.__('Give the job and the host.'));
        return null;
      }
      const stream = args.stream === 'ssm' ? 'ssm' : 'training';
      return openLogs(job, host, stream);
    }
  });
}
