import { JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { SMDebugAPI } from '../../api';
import { AttachManager } from '../../attach';
import { addCommands, CommandIDs } from '../../commands';
import { JobsModel } from '../../model';
import { ISMDebugTab, TabManager } from '../../tabs';
import { Transport } from '../../types';
import { FakeServer } from '../../__tests__/fakeServer';
import { IHostFiles } from '../service';

const trans = nullTranslator.load('jupyter_sm_debug');

/**
 * A files tab without a file browser: what the command and TabManager see.
 */
class FakeFilesTab extends Widget implements ISMDebugTab {
  constructor(
    readonly job: string,
    readonly host: string,
    public transport: Transport
  ) {
    super();
  }
  get restoreArgs(): ReadonlyPartialJSONObject {
    return { job: this.job, host: this.host, transport: this.transport };
  }
  setTransport(transport: Transport): void {
    this.transport = transport;
  }
}

function page(files: IHostFiles | null) {
  const commands = new CommandRegistry();
  const main: Widget[] = [];
  const shell = {
    add: (widget: Widget) => void main.push(widget),
    activateById: () => undefined
  };
  const restored: { command: string; tracker: WidgetTracker<ISMDebugTab> }[] =
    [];
  const tabs = new TabManager({
    shell,
    restorer: {
      restore: (tracker, options) => {
        restored.push({ command: options.command, tracker });
        return Promise.resolve();
      }
    }
  });
  const model = new JobsModel({
    api: new SMDebugAPI(new FakeServer(2).request)
  });
  addCommands({
    app: { commands, shell } as unknown as JupyterFrontEnd,
    model,
    attach: {} as AttachManager,
    tabs,
    trans,
    panelId: 'panel',
    files
  });
  return { commands, main, restored };
}

describe('the Files command', () => {
  it('opens one files tab per host, switching its transport when asked again', async () => {
    const created: FakeFilesTab[] = [];
    const files = {
      idFor: (job: string, host: string) => `files-${job}-${host}`,
      createTab: (job: string, host: string, transport: Transport) => {
        const tab = new FakeFilesTab(job, host, transport);
        created.push(tab);
        return tab;
      }
    } as unknown as IHostFiles;
    const { commands, main, restored } = page(files);

    await commands.execute(CommandIDs.files, {
      job: 'job-001',
      host: 'algo-1',
      transport: 'ssm'
    });
    await commands.execute(CommandIDs.files, {
      job: 'job-001',
      host: 'algo-1',
      transport: 'ssh'
    });
    await commands.execute(CommandIDs.files, {
      job: 'job-001',
      host: 'algo-2',
      transport: 'ssm'
    });
    expect(created.map(tab => [tab.host, tab.transport])).toEqual([
      ['algo-1', 'ssh'],
      ['algo-2', 'ssm']
    ]);
    expect(main.map(widget => widget.id)).toEqual([
      'files-job-001-algo-1',
      'files-job-001-algo-2'
    ]);
    // Restored after a reload by the same command, with its arguments.
    const tracker = restored.find(r => r.command === CommandIDs.files)!;
    const args: ReadonlyPartialJSONObject[] = [];
    tracker.tracker.forEach(tab => args.push(tab.restoreArgs));
    expect(args).toEqual([
      { job: 'job-001', host: 'algo-1', transport: 'ssh' },
      { job: 'job-001', host: 'algo-2', transport: 'ssm' }
    ]);
    expect(commands.label(CommandIDs.files, { job: 'j', host: 'algo-1' })).toBe(
      'Files of algo-1 of j'
    );
  });

  it('says why when JupyterLab has no file browser, and opens nothing', async () => {
    const { commands, main } = page(null);
    expect(
      await commands.execute(CommandIDs.files, {
        job: 'job-001',
        host: 'algo-1',
        transport: 'ssm'
      })
    ).toBeNull();
    expect(main).toHaveLength(0);
  });
});
