import { Terminal } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { SMDebugAPI } from '../api';
import { AttachManager, ITerminalTab, parseTerminalName } from '../attach';
import { SMDebugError } from '../request';
import { FakeServer } from './fakeServer';

/**
 * A stand-in for JupyterLab's terminal session: it can end like a real one.
 */
class FakeSession {
  constructor(readonly name: string) {}
  connectionStatus: Terminal.ConnectionStatus = 'connected';
  isDisposed = false;
  disposed = new Signal<this, void>(this);
  connectionStatusChanged = new Signal<this, Terminal.ConnectionStatus>(this);

  /** Names shut down on the server through this session. */
  static shutDown: string[] = [];

  async shutdown(): Promise<void> {
    FakeSession.shutDown.push(this.name);
    this.end();
  }

  /** The process exited: the server said 'disconnect'. */
  end(): void {
    this.isDisposed = true;
    this.disposed.emit();
    this.connectionStatus = 'disconnected';
    this.connectionStatusChanged.emit('disconnected');
  }
}

/**
 * A stand-in for `terminal:open`: a main-area widget around a session.
 */
function makeTab(name: string): ITerminalTab {
  const content = new Widget() as Widget & { session: FakeSession };
  content.session = new FakeSession(name);
  // Like JupyterLab's terminal, which renames itself once connected.
  content.title.label = `Terminal ${name}`;
  const tab = new Widget() as unknown as ITerminalTab;
  (tab as any).content = content;
  content.title.changed.connect(() => {
    tab.title.label = content.title.label;
  });
  return tab;
}

describe('AttachManager', () => {
  let server: FakeServer;
  let opened: ITerminalTab[];
  let openedNames: string[];
  let activated: string[];
  let manager: AttachManager;

  beforeEach(() => {
    FakeSession.shutDown = [];
    server = new FakeServer(10);
    opened = [];
    openedNames = [];
    activated = [];
    manager = new AttachManager({
      api: new SMDebugAPI(server.request),
      openTerminal: async name => {
        openedNames.push(name);
        const tab = makeTab(name);
        opened.push(tab);
        return tab;
      },
      activate: id => activated.push(id),
      findTab: name =>
        opened.find(tab => !tab.isDisposed && tab.content.session.name === name)
    });
  });

  it('asks the server for a terminal, then opens the name it returned', async () => {
    const session = await manager.attach('job-009', 'algo-2', 'ssh');
    expect(server.lastCall()).toEqual({
      method: 'POST',
      path: 'jobs/job-009/hosts/algo-2/terminals',
      body: { transport: 'ssh' }
    });
    expect(openedNames).toEqual(['smdebug_job_009__algo_2__ssh']);
    expect(session.status).toBe('open');
    expect(session.target).toBe('job-009_algo-2');
    expect(session.tab).toBe(opened[0]);
  });

  it('titles the tab after the host and the job, and keeps it so', async () => {
    const { tab } = await manager.attach('job-009', 'algo-2', 'ssm');
    expect(tab!.title.label).toBe('algo-2 · job-009 · SSM');
    // The remote shell sets an xterm title: ours comes back.
    tab!.content.title.label = 'root@algo-2: /opt/ml';
    expect(tab!.title.label).toBe('algo-2 · job-009 · SSM');
    expect(tab!.content.title.caption).toMatch(/over SSM/);
  });

  it('focuses the open tab on a second attach instead of opening another', async () => {
    const first = await manager.attach('job-009', 'algo-1', 'ssm');
    const second = await manager.attach('job-009', 'algo-1', 'ssm');
    expect(second).toBe(first);
    expect(server.callsTo('jobs/job-009/hosts')).toBe(1);
    expect(opened).toHaveLength(1);
    expect(activated).toEqual([first.tab!.id]);
  });

  it('attaches once for a double click', async () => {
    const [a, b] = await Promise.all([
      manager.attach('job-009', 'algo-1', 'ssm'),
      manager.attach('job-009', 'algo-1', 'ssm')
    ]);
    expect(a).toBe(b);
    expect(server.callsTo('jobs/job-009/hosts')).toBe(1);
    expect(opened).toHaveLength(1);
  });

  it('titles tabs over SSH and SSM to one host apart', async () => {
    const ssh = await manager.attach('job-009', 'algo-1', 'ssh');
    const ssm = await manager.attach('job-009', 'algo-1', 'ssm');
    expect(ssh.tab!.title.label).toBe('algo-1 · job-009 · SSH');
    expect(ssm.tab!.title.label).toBe('algo-1 · job-009 · SSM');
  });

  it('shows that the session ended, and asks the server again before reopening', async () => {
    const session = await manager.attach('job-009', 'algo-1', 'ssh');
    const firstTab = session.tab!;
    const changes: string[] = [];
    manager.changed.connect((_, s) => changes.push(s.status));

    (firstTab.content.session as unknown as FakeSession).end();
    expect(session.status).toBe('ended');
    expect(changes).toEqual(['ended']);
    expect(firstTab.title.label).toBe('algo-1 · job-009 · SSH (ended)');

    await manager.attach('job-009', 'algo-1', 'ssh');
    // A new POST came before the new tab, and the dead tab with the same
    // name was closed so that terminal:open does not just focus it.
    expect(server.callsTo('jobs/job-009/hosts')).toBe(2);
    expect(firstTab.isDisposed).toBe(true);
    expect(opened).toHaveLength(2);
    expect(session.tab).toBe(opened[1]);
    expect(session.status).toBe('open');
  });

  it('marks the session ended when its tab is closed', async () => {
    const session = await manager.attach('job-009', 'algo-1', 'ssh');
    session.tab!.dispose();
    expect(session.status).toBe('ended');
    expect(session.tab).toBeNull();
  });

  it('opens nothing when the server refuses, and keeps its reason', async () => {
    server.failures = [
      {
        prefix: 'jobs/job-009/hosts',
        error: new SMDebugError({
          status: 409,
          code: 'remote_debug_off',
          message: 'Remote debug is off for job-009.',
          hint: 'Turn it on, then attach.'
        })
      }
    ];
    const session = await manager.attach('job-009', 'algo-1', 'ssm');
    expect(openedNames).toEqual([]);
    expect(session.status).toBe('failed');
    expect(session.error?.code).toBe('remote_debug_off');
    expect(session.error?.hint).toBe('Turn it on, then attach.');
    expect(manager.sessionsOf('job-009', 'algo-1')).toEqual([session]);
  });

  describe('after a page reload', () => {
    const live = 'smdebug_job_009__algo_1__ssh';
    const gone = 'smdebug_job_009__algo_2__ssm';

    it('takes back a restored tab whose session still runs', async () => {
      const tab = makeTab(live);
      const { adopted, closed } = await manager.adoptRestored(
        [tab],
        new Set([live])
      );
      expect(closed).toEqual([]);
      expect(adopted).toHaveLength(1);
      const session = manager.session('job-009', 'algo-1', 'ssh')!;
      expect(adopted[0]).toBe(session);
      expect(session.status).toBe('open');
      expect(session.tab).toBe(tab);
      expect(session.terminalName).toBe(live);
      expect(tab.title.label).toBe('algo-1 · job-009 · SSH');
      expect(tab.isDisposed).toBe(false);
      expect(FakeSession.shutDown).toEqual([]);

      // Tracked like any attach: a second attach focuses it, its end shows.
      await manager.attach('job-009', 'algo-1', 'ssh');
      expect(activated).toEqual([tab.id]);
      expect(server.callsTo('jobs/job-009/hosts')).toBe(0);
      (tab.content.session as unknown as FakeSession).end();
      expect(session.status).toBe('ended');
    });

    it('closes a restored tab whose session was gone, shutting down the local shell under its name', async () => {
      const tab = makeTab(gone);
      const changes: string[] = [];
      manager.changed.connect((_, s) => changes.push(`${s.host} ${s.status}`));

      const { adopted, closed } = await manager.adoptRestored(
        [tab],
        new Set([live]) // what the server had before the restore
      );

      expect(adopted).toEqual([]);
      expect(closed.map(s => [s.job, s.host, s.transport])).toEqual([
        ['job-009', 'algo-2', 'ssm']
      ]);
      expect(FakeSession.shutDown).toEqual([gone]);
      expect(tab.isDisposed).toBe(true);
      const session = manager.session('job-009', 'algo-2', 'ssm')!;
      expect(session.status).toBe('ended');
      expect(session.tab).toBeNull();
      expect(changes).toEqual(['algo-2 ended']);

      // Attach again asks the server (which replaces any shell of that name).
      await manager.attach('job-009', 'algo-2', 'ssm');
      expect(server.callsTo('jobs/job-009/hosts/algo-2/terminals')).toBe(1);
      expect(session.status).toBe('open');
      tab.dispose(); // already: disposing again changes nothing
    });

    it('closes the tabs but shuts down nothing when the terminals could not be listed', async () => {
      const tabs = [makeTab(live), makeTab(gone)];
      const { adopted, closed } = await manager.adoptRestored(tabs, null);
      expect(adopted).toEqual([]);
      expect(closed).toHaveLength(2);
      expect(tabs.every(tab => tab.isDisposed)).toBe(true);
      expect(FakeSession.shutDown).toEqual([]);
    });

    it('leaves other terminals alone', async () => {
      const mine = makeTab('1');
      const lookalike = makeTab('smdebug_notes');
      const { adopted, closed } = await manager.adoptRestored(
        [mine, lookalike],
        new Set<string>()
      );
      expect(adopted).toEqual([]);
      expect(closed).toEqual([]);
      expect(mine.isDisposed || lookalike.isDisposed).toBe(false);
      expect(lookalike.content.title.label).toBe('Terminal smdebug_notes');
      mine.dispose();
      lookalike.dispose();
    });

    it('reads job, host and transport back from a terminal name', () => {
      expect(
        parseTerminalName('smdebug_llama_finetune_2026_11_23_1400__algo_1__ssm')
      ).toEqual({
        job: 'llama-finetune-2026-11-23-1400',
        host: 'algo-1',
        transport: 'ssm'
      });
      expect(parseTerminalName('smdebug_a__b__algo_12__ssh')).toEqual({
        job: 'a--b',
        host: 'algo-12',
        transport: 'ssh'
      });
      for (const other of [
        '1',
        'smdebug_',
        'smdebug_x__algo_0__ssh',
        'smdebug_x__algo_1__scp'
      ]) {
        expect(parseTerminalName(other)).toBeNull();
      }
    });
  });
});
