import { SMDebugAPI } from '../api';
import { JobsModel } from '../model';
import { SMDebugError } from '../request';
import { FakeServer } from './fakeServer';

/**
 * Let pending promise callbacks run.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

function makeModel(
  server: FakeServer,
  options: Partial<JobsModel.IOptions> = {}
): JobsModel {
  return new JobsModel({
    api: new SMDebugAPI(server.request),
    refreshInterval: 15,
    ...options
  });
}

describe('JobsModel', () => {
  let server: FakeServer;
  let model: JobsModel;

  beforeEach(() => {
    jest.useFakeTimers();
    server = new FakeServer(45);
  });

  afterEach(() => {
    model?.dispose();
    jest.useRealTimers();
  });

  describe('held jobs (issue 23, finding 8)', () => {
    it('asks a running row with a hold window for its hold, collapsed and after a reload', async () => {
      const held = server.jobs.find(job => job.name === 'job-044')!;
      held.status = 'InProgress';
      held.secondary_status = 'Training';
      held.hold_window = 600;
      held.hold = {
        hosts: ['algo-1'],
        since: new Date(0).toISOString(),
        until: new Date(Date.now() + 600000).toISOString(),
        seconds: 600,
        last_lines: ['Traceback']
      };
      for (let reload = 0; reload < 2; reload++) {
        model?.dispose();
        model = makeModel(server);
        model.isVisible = true;
        await jest.advanceTimersByTimeAsync(0);
        await settle();
        expect(model.isExpanded('job-044')).toBe(false);
        expect(model.detail('job-044')?.job?.hold?.seconds).toBe(600);
        // Rows without a hold window are not asked.
        expect(model.detail('job-043')).toBeUndefined();
      }
    });
  });

  describe('loading and paging', () => {
    it('loads nothing until the panel is first shown', async () => {
      model = makeModel(server);
      await jest.advanceTimersByTimeAsync(60000);
      expect(server.calls).toHaveLength(0);
    });

    it('loads the first page, newest first, and the environment when shown', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(model.loaded).toBe(true);
      expect(model.jobs).toHaveLength(20);
      expect(model.jobs[0].name).toBe('job-044');
      expect(model.hasMore).toBe(true);
      expect(model.environment?.region).toBe('us-east-1');
      expect(server.lastCall('jobs').path).toBe(
        'jobs?max_results=20&describe=false'
      );
    });

    it('shows the listed rows first and fills them from one descriptions request', async () => {
      server.jobs.slice(0, 20).forEach(job => server.undescribed.add(job.name));
      server.hold = true;
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      server.release(); // the list answers; the descriptions are still held
      await jest.advanceTimersByTimeAsync(0);
      expect(model.jobs).toHaveLength(20);
      expect(model.jobs[0].name).toBe('job-044');
      expect(model.jobs[0].described).toBe(false);
      expect(model.jobs[0].instance_count).toBeNull();
      expect(model.loaded).toBe(true);
      const asks = server.calls.filter(call =>
        call.path.startsWith('descriptions')
      );
      expect(asks).toHaveLength(1);
      expect(decodeURIComponent(asks[0].path)).toBe(
        `descriptions?names=${model.jobs.map(job => job.name).join(',')}`
      );
      server.release();
      await jest.advanceTimersByTimeAsync(0);
      server.release();
      await jest.advanceTimersByTimeAsync(0);
      expect(model.jobs.every(job => job.described !== false)).toBe(true);
      expect(model.jobs[0].instance_count).toBe(server.jobs[0].instance_count);
      expect(model.jobs[0].remote_debug).toEqual(server.jobs[0].remote_debug);
    });

    it('asks for no descriptions when every listed row is whole', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(server.callsTo('descriptions')).toBe(0);
    });

    it('keeps a described row whole while a poll lists it undescribed', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      const count = model.jobs[0].instance_count;
      server.undescribed.add(model.jobs[0].name);
      server.failures.push({
        prefix: 'descriptions',
        error: new SMDebugError({
          status: 503,
          code: 'aws_unavailable',
          message: 'down',
          hint: 'later'
        })
      });
      await model.refresh();
      expect(model.jobs[0].described).toBe(false);
      expect(model.jobs[0].instance_count).toBe(count);
      expect(model.error).toBeNull(); // a failed fill leaves the listed rows
      await model.refresh();
      expect(model.jobs[0].described).toBe(true);
    });

    it('appends pages with Load more until there are no more', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);

      await model.loadMore();
      expect(model.jobs).toHaveLength(40);
      expect(server.lastCall().path).toBe(
        'jobs?max_results=20&next_token=20&describe=false'
      );
      await model.loadMore();
      expect(model.jobs).toHaveLength(45);
      expect(model.hasMore).toBe(false);
      expect(new Set(model.jobs.map(job => job.name)).size).toBe(45);

      const before = server.calls.length;
      await model.loadMore();
      expect(server.calls.length).toBe(before); // nothing left to ask for
    });

    it('a refresh keeps as many rows as were loaded', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      await model.loadMore();
      await model.refresh();
      expect(server.lastCall('jobs?').path).toBe(
        'jobs?max_results=40&describe=false'
      );
      expect(model.jobs).toHaveLength(40);
      expect(model.hasMore).toBe(true);
    });
  });

  describe('polling', () => {
    it('refreshes at the interval from the settings', async () => {
      model = makeModel(server, { refreshInterval: 15 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(server.callsTo('jobs?')).toBe(1);
      await jest.advanceTimersByTimeAsync(14000);
      expect(server.callsTo('jobs?')).toBe(1);
      await jest.advanceTimersByTimeAsync(1000);
      expect(server.callsTo('jobs?')).toBe(2);

      model.refreshInterval = 60;
      await jest.advanceTimersByTimeAsync(30000);
      expect(server.callsTo('jobs?')).toBe(2);
      await jest.advanceTimersByTimeAsync(30000);
      expect(server.callsTo('jobs?')).toBe(3);
    });

    it('does not poll while the panel is hidden, and refreshes when shown again', async () => {
      model = makeModel(server, { refreshInterval: 15 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      model.isVisible = false;
      await jest.advanceTimersByTimeAsync(120000);
      expect(server.callsTo('jobs?')).toBe(1);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(server.callsTo('jobs?')).toBe(2);
    });

    it('an interval of 0 turns automatic refresh off', async () => {
      model = makeModel(server, { refreshInterval: 0 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      await jest.advanceTimersByTimeAsync(3600 * 1000);
      expect(server.callsTo('jobs?')).toBe(1);
    });

    it('backs off while the server fails, keeps the error, and recovers', async () => {
      // Poll picks a random delay between the interval and 3x the last one.
      jest.spyOn(Math, 'random').mockReturnValue(0.5);
      model = makeModel(server, { refreshInterval: 10 });
      const throttled = new SMDebugError({
        status: 429,
        code: 'throttled',
        message: 'SageMaker is throttling requests.',
        hint: 'Wait a minute.'
      });
      server.failures = [1, 2, 3].map(() => ({
        prefix: 'jobs',
        error: throttled
      }));
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      expect(model.error).toBe(throttled);
      expect(model.poll.state.phase).toBe('rejected');

      const waits: number[] = [];
      for (let i = 0; i < 3; i++) {
        waits.push(model.poll.state.interval);
        await jest.advanceTimersByTimeAsync(model.poll.state.interval);
      }
      expect(server.callsTo('jobs')).toBe(4);
      // Each failure waits longer than the one before, beyond the interval.
      expect(waits[1]).toBeGreaterThan(10000);
      expect(waits[2]).toBeGreaterThan(waits[1]);

      expect(model.error).toBeNull();
      expect(model.jobs).toHaveLength(20);
      expect(model.poll.state.phase).toBe('reconnected');
      expect(model.poll.state.interval).toBe(10000);
      jest.spyOn(Math, 'random').mockRestore();
    });
  });

  describe('filters', () => {
    it('debounces the name filter and sends what was typed last', async () => {
      model = makeModel(server, { filterDelay: 300 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      model.setNameFilter('job-0');
      await jest.advanceTimersByTimeAsync(100);
      model.setNameFilter('job-01');
      await jest.advanceTimersByTimeAsync(100);
      model.setNameFilter('job-012');
      await jest.advanceTimersByTimeAsync(299);
      expect(server.callsTo('jobs?')).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(server.callsTo('jobs?')).toBe(2);
      expect(server.lastCall('jobs?').path).toBe(
        'jobs?name_contains=job-012&max_results=20&describe=false'
      );
      expect(model.jobs.map(job => job.name)).toEqual(['job-012']);
    });

    it('does not send a name the server would reject', async () => {
      model = makeModel(server, { filterDelay: 300 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      model.setNameFilter('job_1; rm');
      await jest.advanceTimersByTimeAsync(1000);
      expect(model.nameFilterValid).toBe(false);
      expect(server.callsTo('jobs?')).toBe(1);
    });

    it('reloads at once from the first page when the status filter changes', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      await model.loadMore();
      model.setStatusFilter('Completed');
      await jest.advanceTimersByTimeAsync(0);
      expect(server.lastCall('jobs?').path).toBe(
        'jobs?status=Completed&max_results=20&describe=false'
      );
      expect(model.jobs.every(job => job.status === 'Completed')).toBe(true);
      expect(model.jobs).toHaveLength(9);
    });

    it('clears both filters and reloads once', async () => {
      model = makeModel(server);
      model.isVisible = true;
      model.setNameFilter('job-04');
      model.setStatusFilter('InProgress');
      await jest.advanceTimersByTimeAsync(1000);
      expect(model.filtered).toBe(true);
      const before = server.callsTo('jobs?');

      model.clearFilters();
      await jest.advanceTimersByTimeAsync(1000);

      expect(model.filtered).toBe(false);
      expect(model.nameFilter).toBe('');
      expect(model.statusFilter).toBe('');
      expect(server.callsTo('jobs?')).toBe(before + 1);
      expect(server.lastCall('jobs?').path).toBe(
        'jobs?max_results=20&describe=false'
      );
      expect(model.jobs).toHaveLength(20);
    });

    it('ignores an answer for filters that changed meanwhile', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      server.hold = true;
      model.setStatusFilter('Failed');
      await settle();
      model.setStatusFilter('Completed');
      await settle();
      server.hold = false;
      server.release();
      await jest.advanceTimersByTimeAsync(0);
      expect(model.statusFilter).toBe('Completed');
      expect(model.jobs.every(job => job.status === 'Completed')).toBe(true);
    });
  });

  describe('job details', () => {
    it('loads a description when a job is expanded', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      model.setExpanded('job-044', true);
      expect(model.detail('job-044')?.loading).toBe(true);
      await jest.advanceTimersByTimeAsync(0);
      expect(model.detail('job-044')?.job?.hosts.map(h => h.name)).toEqual([
        'algo-1',
        'algo-2'
      ]);
    });

    it("keeps a finished job's description for good, and polls a running one", async () => {
      model = makeModel(server, { refreshInterval: 15 });
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      model.setExpanded('job-040', true); // Completed
      model.setExpanded('job-044', true); // InProgress
      await jest.advanceTimersByTimeAsync(0);
      await jest.advanceTimersByTimeAsync(15000);
      await jest.advanceTimersByTimeAsync(15000);
      expect(server.callsTo('jobs/job-040')).toBe(1);
      expect(server.callsTo('jobs/job-044')).toBe(3);
    });

    it('keeps why a description failed to load', async () => {
      model = makeModel(server);
      await model.loadDetail('no-such-job');
      const state = model.detail('no-such-job');
      expect(state?.job).toBeNull();
      expect(state?.error?.status).toBe(404);
      expect(state?.error?.hint).toBe('Check the name.');
    });
  });

  describe('remote debug', () => {
    it('changes only when the server says so (not optimistic)', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      await model.loadDetail('job-044');
      server.hold = true;
      const done = model.setRemoteDebug('job-044', true);
      await settle();
      expect(model.remoteDebug('job-044').pending).toBe(true);
      expect(model.detail('job-044')?.job?.remote_debug.enabled).toBe(false);
      expect(model.jobs[0].remote_debug?.enabled).toBe(false);

      // A second click while in flight sends nothing.
      expect(await model.setRemoteDebug('job-044', true)).toBe(false);
      expect(server.calls.filter(c => c.method === 'PUT')).toHaveLength(1);

      server.hold = false;
      server.release();
      expect(await done).toBe(true);
      expect(model.remoteDebug('job-044')).toEqual({
        pending: null,
        error: null
      });
      expect(model.detail('job-044')?.job?.remote_debug.enabled).toBe(true);
      expect(model.jobs[0].remote_debug?.enabled).toBe(true); // the list row too
      expect(server.lastCall()).toEqual({
        method: 'PUT',
        path: 'jobs/job-044/remote-debug',
        body: { enabled: true }
      });
    });

    it("keeps a refusal with the server's message and hint", async () => {
      model = makeModel(server);
      await model.loadDetail('job-040'); // Completed
      expect(await model.setRemoteDebug('job-040', true)).toBe(false);
      const { pending, error } = model.remoteDebug('job-040');
      expect(pending).toBeNull();
      expect(error?.status).toBe(409);
      expect(error?.code).toBe('wrong_state');
      expect(error?.message).toMatch(/can't change while job-040 is Completed/);
      expect(error?.hint).toMatch(/Downloading or Training/);
      expect(model.detail('job-040')?.job?.remote_debug.enabled).toBe(false);

      model.clearRemoteDebugError('job-040');
      expect(model.remoteDebug('job-040').error).toBeNull();
    });
  });

  describe('debug a copy', () => {
    it('starts a copy with the hold window, then lists it first, expanded and selected', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      const revealed: string[] = [];
      model.revealRequested.connect((_, job) => revealed.push(job));

      const copy = await model.debugCopy('job-042', 600);

      expect(server.calls.filter(c => c.method === 'POST')).toEqual([
        {
          method: 'POST',
          path: 'jobs/job-042/debug-copy',
          body: { hold_seconds: 600 }
        }
      ]);
      expect(copy?.name).toBe('job-042-debug-0001');
      expect(copy?.remote_debug.enabled).toBe(true);
      // The list was reloaded: the copy is the newest job.
      expect(server.lastCall('jobs?').path).toBe(
        'jobs?max_results=20&describe=false'
      );
      expect(model.jobs[0].name).toBe('job-042-debug-0001');
      expect(model.jobs[0].remote_debug?.enabled).toBe(true);
      expect(model.isExpanded('job-042-debug-0001')).toBe(true);
      expect(model.selected).toBe('job-042-debug-0001');
      expect(revealed).toEqual(['job-042-debug-0001']);
      expect(model.debugCopyState('job-042')).toEqual({
        pending: false,
        error: null,
        copy: 'job-042-debug-0001'
      });
    });

    it('clears the filters that would hide the copy', async () => {
      model = makeModel(server);
      model.isVisible = true;
      model.setStatusFilter('Failed');
      await jest.advanceTimersByTimeAsync(0);
      expect(model.jobs.every(job => job.status === 'Failed')).toBe(true);

      await model.debugCopy('job-042', 1800);

      expect(model.statusFilter).toBe('');
      expect(model.jobs[0].name).toBe('job-042-debug-0001');
    });

    it('keeps a name filter the copy still matches', async () => {
      model = makeModel(server);
      model.isVisible = true;
      model.setNameFilter('job-042');
      await jest.advanceTimersByTimeAsync(1000);

      await model.debugCopy('job-042', 1800);

      expect(model.nameFilter).toBe('job-042');
      expect(model.jobs.map(job => job.name)).toEqual([
        'job-042-debug-0001',
        'job-042'
      ]);
    });

    it('puts a copy the server does not list yet first', async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      server.listLag = true;

      await model.debugCopy('job-042', 1800);

      expect(model.jobs[0].name).toBe('job-042-debug-0001');
      expect(model.jobs).toHaveLength(21);
      expect(model.isExpanded('job-042-debug-0001')).toBe(true);
    });

    it('starts one copy for a double click', async () => {
      model = makeModel(server);
      server.hold = true;
      const first = model.debugCopy('job-042', 1800);
      await settle();
      expect(model.debugCopyState('job-042').pending).toBe(true);
      expect(await model.debugCopy('job-042', 1800)).toBeNull();
      server.hold = false;
      server.release();
      await first;
      expect(server.callsTo('jobs/job-042/debug-copy')).toBe(1);
      expect(model.debugCopyState('job-042').pending).toBe(false);
    });

    it("keeps a refusal with the server's message and hint, and lists nothing new", async () => {
      model = makeModel(server);
      model.isVisible = true;
      await jest.advanceTimersByTimeAsync(0);
      server.jobs.find(job => job.name === 'job-042')!.network_isolation = true;
      const before = model.jobs.map(job => job.name);

      expect(await model.debugCopy('job-042', 1800)).toBeNull();

      const { pending, error, copy } = model.debugCopyState('job-042');
      expect(pending).toBe(false);
      expect(copy).toBeNull();
      expect(error?.status).toBe(409);
      expect(error?.code).toBe('network_isolation');
      expect(error?.message).toMatch(/network isolation/);
      expect(error?.hint).toMatch(/EnableNetworkIsolation/);
      expect(model.jobs.map(job => job.name)).toEqual(before);
      expect(model.selected).toBeNull();

      model.clearDebugCopyError('job-042');
      expect(model.debugCopyState('job-042').error).toBeNull();
    });

    it('takes the default hold window from the settings, ignoring ones the server refuses', () => {
      model = makeModel(server);
      expect(model.debugCopyHoldSeconds).toBe(1800);
      model.debugCopyHoldSeconds = 3600;
      expect(model.debugCopyHoldSeconds).toBe(3600);
      for (const bad of [-1, 1.5, 86401, NaN]) {
        model.debugCopyHoldSeconds = bad;
      }
      expect(model.debugCopyHoldSeconds).toBe(3600);
    });
  });

  describe('errors', () => {
    it('maps anything thrown to an SMDebugError', async () => {
      model = makeModel(server);
      server.failures = [{ prefix: 'jobs', error: new TypeError('boom') }];
      await model.refresh();
      expect(model.error).toBeInstanceOf(SMDebugError);
      expect(model.error?.code).toBe('UnknownError');
      expect(model.error?.message).toBe('boom');
    });

    it('reports an environment check that failed without failing the list', async () => {
      model = makeModel(server);
      server.failures = [
        {
          prefix: 'environment',
          error: new SMDebugError({
            status: 403,
            code: 'forbidden',
            message: 'No permission.',
            hint: 'Reload.'
          })
        }
      ];
      await model.loadEnvironment();
      expect(model.environmentError?.code).toBe('forbidden');
      await model.refresh();
      expect(model.error).toBeNull();
      expect(model.environmentError).toBeNull();
    });
  });

  it('says SSH cannot attach when the server has no ssh client', async () => {
    model = makeModel(server);
    const job = (await model.loadDetail('job-044'))!;
    expect(model.attachState(job, 'ssh').ok).toBe(true);
    server.environment = {
      ...server.environment,
      clients: { ssh: null, ssm: 'builtin' }
    };
    await model.loadEnvironment();
    const ssh = model.attachState(job, 'ssh');
    expect(ssh.ok).toBe(false);
    expect(ssh.reason).toContain('no ssh client');
    expect(model.attachState(job, 'ssm').ok).toBe(true);
  });
});
