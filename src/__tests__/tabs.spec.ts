import { JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { SMDebugAPI } from '../api';
import { AttachManager } from '../attach';
import { addCommands, CommandIDs } from '../commands';
import { HostStateWidget } from '../hoststate';
import { LogsWidget } from '../logsWidget';
import { JobsModel } from '../model';
import { RunOutputWidget } from '../runoutput';
import { StacksWidget } from '../stacks';
import { ISMDebugTab, TabManager } from '../tabs';
import { FakeServer } from './fakeServer';

const trans = nullTranslator.load('jupyter_sm_debug');

/**
 * What the layout restorer keeps of the tabs: for each tracker, the command
 * and each tab's arguments and name.
 */
class FakeRestorer {
  restore(
    tracker: WidgetTracker<ISMDebugTab>,
    options: {
      command: string;
      args?: (tab: ISMDebugTab) => ReadonlyPartialJSONObject;
      name: (tab: ISMDebugTab) => string;
    }
  ): Promise<void> {
    this._trackers.push({ tracker, options });
    return Promise.resolve();
  }

  /**
   * What a page reload finds in the state database.
   */
  saved(): {
    command: string;
    args: ReadonlyPartialJSONObject;
    name: string;
  }[] {
    const saved: {
      command: string;
      args: ReadonlyPartialJSONObject;
      name: string;
    }[] = [];
    for (const { tracker, options } of this._trackers) {
      tracker.forEach(tab =>
        saved.push({
          command: options.command,
          args: options.args?.(tab) ?? {},
          name: options.name(tab)
        })
      );
    }
    return saved;
  }

  /**
   * The tracker restored with `command`.
   */
  tracker(command: string): WidgetTracker<ISMDebugTab> {
    return this._trackers.find(t => t.options.command === command)!.tracker;
  }

  private _trackers: {
    tracker: WidgetTracker<ISMDebugTab>;
    options: {
      command: string;
      args?: (tab: ISMDebugTab) => ReadonlyPartialJSONObject;
      name: (tab: ISMDebugTab) => string;
    };
  }[] = [];
}

/**
 * A page: commands, a main area, the tab manager and the restorer.
 */
function page(server: FakeServer) {
  const commands = new CommandRegistry();
  const main: Widget[] = [];
  const shell = {
    add: (widget: Widget) => {
      main.push(widget);
    },
    activateById: () => undefined
  };
  const restorer = new FakeRestorer();
  const tabs = new TabManager({ shell, restorer });
  const model = new JobsModel({ api: new SMDebugAPI(server.request) });
  addCommands({
    app: { commands, shell } as unknown as JupyterFrontEnd,
    model,
    attach: {} as AttachManager,
    tabs,
    trans,
    panelId: 'panel'
  });
  return { commands, main, restorer, tabs, model };
}

describe('TabManager', () => {
  it('shows the open tab again, refreshed, rather than a second one', async () => {
    const server = new FakeServer(3);
    const { commands, main } = page(server);
    const args = { job: 'job-001', transport: 'ssh' };
    const first = await commands.execute(CommandIDs.stacks, args);
    const second = await commands.execute(CommandIDs.stacks, args);
    expect(second).toBe(first);
    expect(main).toHaveLength(1);
    expect(server.callsTo('jobs/job-001/stacks')).toBe(2);
    // Another transport is another tab, titled apart.
    const ssm = await commands.execute(CommandIDs.stacks, {
      job: 'job-001',
      transport: 'ssm'
    });
    expect(ssm).not.toBe(first);
    expect((first as Widget).title.label).toBe('Stacks · job-001 · SSH');
    expect((ssm as Widget).title.label).toBe('Stacks · job-001 · SSM');
  });

  it('restores every kind of tab after a reload by asking the server again', async () => {
    const server = new FakeServer(3);
    const before = page(server);
    const opened: [string, ReadonlyPartialJSONObject][] = [
      [CommandIDs.openLogs, { job: 'job-001', host: 'algo-2', stream: 'ssm' }],
      [
        CommandIDs.stacks,
        { job: 'job-001', transport: 'ssh', hosts: ['algo-2'] }
      ],
      [CommandIDs.hostState, { job: 'job-001', transport: 'ssm' }],
      [
        CommandIDs.runOnHosts,
        { job: 'job-001', transport: 'ssh', shell: 'nvidia-smi' }
      ],
      [
        CommandIDs.openPort,
        { job: 'job-001', host: 'algo-1', port: 6006, transport: 'ssm' }
      ]
    ];
    for (const [command, args] of opened) {
      await before.commands.execute(command, args);
    }
    const saved = before.restorer.saved();
    expect(saved.map(entry => entry.command).sort()).toEqual(
      opened.map(([command]) => command).sort()
    );

    // The reloaded page: the restorer runs each saved command.
    server.calls = [];
    const after = page(server);
    for (const { command, args } of saved) {
      await after.commands.execute(command, args);
    }
    const ids = (widgets: Widget[]) => widgets.map(w => w.id).sort();
    expect(ids(after.main)).toEqual(ids(before.main));

    const logs = after.main.find(w => w instanceof LogsWidget) as LogsWidget;
    expect(logs.model.stream).toBe('ssm');
    // Stacks and host state are read anew, the forward opened anew...
    expect(server.lastCall('jobs/job-001/stacks').body).toEqual({
      hosts: ['algo-2'],
      transport: 'ssh'
    });
    const state = after.main.find(
      w => w instanceof HostStateWidget
    ) as HostStateWidget;
    expect(state.rows.map(row => row.host)).toEqual(['algo-1', 'algo-2']);
    expect(server.callsTo('jobs/job-001/hosts/algo-1/state')).toBe(1);
    expect(server.lastCall('jobs/job-001/hosts/algo-1/ports').body).toEqual({
      port: 6006,
      transport: 'ssm'
    });
    // ...but the command typed in the run tab is offered, not run again.
    expect(server.callsTo('jobs/job-001/run')).toBe(0);
    const restoredRun = after.main.find(
      w => w instanceof RunOutputWidget
    ) as RunOutputWidget;
    expect(restoredRun.restoreArgs).toEqual({
      job: 'job-001',
      transport: 'ssh',
      draft: 'nvidia-smi'
    });
    expect(after.main.some(w => w instanceof StacksWidget)).toBe(true);
    for (const widget of [...before.main, ...after.main]) {
      widget.dispose();
    }
  });

  it('saves a tab again when what restores it changes', async () => {
    const server = new FakeServer(3);
    const { commands, restorer } = page(server);
    const tab = (await commands.execute(CommandIDs.runOnHosts, {
      job: 'job-001',
      transport: 'ssm'
    })) as RunOutputWidget;
    const save = jest.spyOn(restorer.tracker(CommandIDs.runOnHosts), 'save');
    await tab.run('uptime');
    expect(save).toHaveBeenCalledWith(tab);
    expect(tab.restoreArgs).toEqual({
      job: 'job-001',
      transport: 'ssm',
      draft: 'uptime'
    });
    tab.dispose();
  });
});
