import { nullTranslator } from '@jupyterlab/translation';

import { SMDebugAPI } from '../api';
import {
  elapsedOf,
  formatElapsed,
  holdLabel,
  instancesLabel,
  timeAgo,
  whenOf
} from '../format';
import { LogsModel } from '../logs';
import { JobsModel } from '../model';
import { SMDebugError } from '../request';
import { FakeServer } from './fakeServer';

const trans = nullTranslator.load('jupyter_sm_debug');

describe('what a job row says', () => {
  it('places a finished job by its end, a running one by its start', () => {
    const now = Date.parse('2026-01-01T10:50:30Z');
    const job = {
      name: 'a',
      secondary_status: 'Stopped',
      created: '2026-01-01T09:59:00Z',
      started: '2026-01-01T10:00:00Z',
      instance_count: 4,
      remote_debug: { enabled: false }
    };
    // Stopped seconds ago after 50 minutes: "ended", from the end.
    const stopped = whenOf(
      trans,
      { ...job, status: 'Stopped', ended: '2026-01-01T10:50:00Z' },
      now
    );
    expect(stopped?.text).toBe('ended 30 seconds ago');
    expect(stopped?.iso).toBe('2026-01-01T10:50:00Z');
    const running = whenOf(trans, { ...job, status: 'InProgress' }, now);
    expect(running?.text).toBe('started 50 minutes ago');
    const queued = whenOf(
      trans,
      { ...job, status: 'InProgress', started: null },
      now
    );
    expect(queued?.text).toBe('created 51 minutes ago');
    // A finished row without its end yet says its start, and says so.
    expect(whenOf(trans, { ...job, status: 'Completed' }, now)?.text).toBe(
      'started 50 minutes ago'
    );
    expect(
      whenOf(
        trans,
        { ...job, status: 'Failed', started: null, created: null },
        now
      )
    ).toBeNull();
  });

  it('says how long ago in whole units', () => {
    const now = Date.parse('2026-01-03T12:00:00Z');
    expect(timeAgo('2026-01-03T12:00:00Z', now, 'en')).toBe('now');
    expect(timeAgo('2026-01-03T11:00:00Z', now, 'en')).toBe('1 hour ago');
    expect(timeAgo('2026-01-02T12:00:00Z', now, 'en')).toBe('yesterday');
  });

  it('names instance type × count, per instance group', () => {
    const job = {
      name: 'a',
      status: 'InProgress' as const,
      secondary_status: 'Training',
      created: null,
      instance_count: 4,
      remote_debug: { enabled: false }
    };
    expect(
      instancesLabel(trans, {
        ...job,
        instances: [{ type: 'ml.g5.12xlarge', count: 4, group: null }]
      })
    ).toBe('4 × ml.g5.12xlarge');
    expect(
      instancesLabel(trans, {
        ...job,
        instances: [
          { type: 'ml.c5.4xlarge', count: 1, group: 'preproc' },
          { type: 'ml.g5.12xlarge', count: 2, group: 'train' }
        ]
      })
    ).toBe('1 × ml.c5.4xlarge + 2 × ml.g5.12xlarge');
    expect(instancesLabel(trans, job)).toBe('4 instances');
  });

  it('shows time running while it runs, billable time once finished', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const running = elapsedOf(
      trans,
      {
        name: 'a',
        status: 'InProgress',
        secondary_status: 'Training',
        created: '2026-01-01T09:00:00Z',
        started: '2026-01-01T09:55:00Z',
        instance_count: 1,
        remote_debug: { enabled: false }
      },
      now
    );
    expect(running?.text).toBe('2 h 05 min');
    expect(running?.billable).toBe(false);
    const finished = elapsedOf(trans, {
      name: 'a',
      status: 'Completed',
      secondary_status: 'Completed',
      created: '2026-01-01T09:00:00Z',
      instance_count: 1,
      training_seconds: 3000,
      billable_seconds: 1200,
      remote_debug: { enabled: false }
    });
    expect(finished?.text).toBe('20 min');
    expect(finished?.billable).toBe(true);
    expect(finished?.title).toBe('Billable time 20 min (trained 50 min)');
    expect(formatElapsed(trans, 42)).toBe('42 s');
    expect(formatElapsed(trans, 3 * 86400 + 5 * 3600)).toBe('3 d 5 h');
  });

  it('says how long a held job stays up', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const hold = {
      hosts: ['algo-1'],
      since: '2026-01-01T11:30:00Z',
      until: '2026-01-01T12:23:00Z',
      seconds: 3180,
      last_lines: []
    };
    expect(holdLabel(trans, hold, now)).toBe(
      'Failed · held for debugging · 23 min left'
    );
    expect(holdLabel(trans, hold, now + 3600 * 1000)).toBe(
      'Failed · held for debugging · 0 min left'
    );
  });
});

describe('JobsModel (panel fixes)', () => {
  let server: FakeServer;
  let model: JobsModel;

  beforeEach(() => {
    jest.useFakeTimers();
    server = new FakeServer(10);
    model = new JobsModel({
      api: new SMDebugAPI(server.request),
      refreshInterval: 15,
      filterDelay: 10
    });
  });

  afterEach(() => {
    model.dispose();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('an invalid filter after an empty result is not "loading" forever', async () => {
    model.isVisible = true;
    await jest.advanceTimersByTimeAsync(0);
    model.setNameFilter('nothing-matches');
    await jest.advanceTimersByTimeAsync(50);
    expect(model.emptyReason).toBe('noMatch');
    model.setNameFilter('nothing_matches!');
    await jest.advanceTimersByTimeAsync(60000);
    expect(model.emptyReason).toBe('invalidFilter');
    expect(model.jobs).toHaveLength(0);
    model.setNameFilter('job-00');
    await jest.advanceTimersByTimeAsync(50);
    expect(model.emptyReason).toBeNull();
  });

  it('an invalid filter after rows clears them', async () => {
    model.isVisible = true;
    await jest.advanceTimersByTimeAsync(0);
    expect(model.jobs.length).toBeGreaterThan(0);
    model.setNameFilter('bad filter');
    expect(model.jobs).toHaveLength(0);
    expect(model.emptyReason).toBe('invalidFilter');
  });

  it('says a list error once when the environment check already says it', async () => {
    const noCredentials = () =>
      new SMDebugError({
        status: 503,
        code: 'no_credentials',
        message: 'The Jupyter server has no AWS credentials.',
        hint: 'Configure credentials.'
      });
    await model.loadEnvironment();
    server.failures = [{ prefix: 'jobs', error: noCredentials() }];
    await model.refresh();
    expect(model.error?.code).toBe('no_credentials');
    expect(model.listError?.code).toBe('no_credentials'); // nothing else says it
    const environment = {
      region: 'us-east-1',
      account: null,
      clients: {},
      versions: {},
      problems: [
        {
          code: 'no_credentials',
          message: 'The Jupyter server has no AWS credentials.',
          hint: 'Configure credentials.'
        }
      ]
    };
    server.failures = [{ prefix: 'jobs', error: noCredentials() }];
    jest
      .spyOn(SMDebugAPI.prototype, 'environment')
      .mockResolvedValue(environment);
    await model.refresh();
    expect(model.error?.code).toBe('no_credentials');
    expect(model.listError).toBeNull();
  });

  it('stops a running job, and keeps the reason a finished one cannot be', async () => {
    model.isVisible = true;
    await jest.advanceTimersByTimeAsync(0);
    const running = server.jobs.find(job => job.status === 'InProgress')!;
    expect(await model.stopJob(running.name)).toBe(true);
    expect(model.find(running.name)?.status).toBe('Stopping');
    expect(server.lastCall(`jobs/${running.name}/stop`).method).toBe('POST');

    const done = server.jobs.find(job => job.status === 'Completed')!;
    expect(await model.stopJob(done.name)).toBe(false);
    const { error } = model.stopState(done.name);
    expect(error?.status).toBe(409);
    expect(error?.message).toContain('Completed');
    model.clearStopError(done.name);
    expect(model.stopState(done.name).error).toBeNull();
  });
});

describe('LogsModel', () => {
  let server: FakeServer;
  let logs: LogsModel;

  beforeEach(() => {
    jest.useFakeTimers();
    server = new FakeServer(3);
  });

  afterEach(() => {
    logs?.dispose();
    jest.useRealTimers();
  });

  function make(job: string, pageSize = 2): LogsModel {
    return new LogsModel({
      api: new SMDebugAPI(server.request),
      job,
      host: 'algo-1',
      interval: 1000,
      pageSize,
      statusEvery: 3
    });
  }

  it('reads every page, then follows new lines while the job runs', async () => {
    const job = server.jobs.find(j => j.status === 'InProgress')!;
    server.log(job.name, 'algo-1', ['one', 'two', 'three', 'four', 'five']);
    logs = make(job.name);
    logs.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(logs.lines.map(l => l.message)).toEqual([
      'one',
      'two',
      'three',
      'four',
      'five'
    ]);
    expect(logs.following).toBe(true);
    server.log(job.name, 'algo-1', ['six']);
    await jest.advanceTimersByTimeAsync(1000);
    expect(logs.lines.map(l => l.message).slice(-1)).toEqual(['six']);
    expect(
      server.lastCall(`jobs/${job.name}/hosts/algo-1/logs`).path
    ).toContain('next_token=6');

    // The job ends: one last read, then no more.
    job.status = 'Completed';
    server.log(job.name, 'algo-1', ['seven']);
    await jest.advanceTimersByTimeAsync(5000);
    expect(logs.following).toBe(false);
    expect(logs.lines.map(l => l.message).slice(-1)).toEqual(['seven']);
    const calls = server.callsTo(`jobs/${job.name}/hosts`);
    await jest.advanceTimersByTimeAsync(10000);
    expect(server.callsTo(`jobs/${job.name}/hosts`)).toBe(calls);
  });

  it('searches, switches to the SSM stream, and waits for a host without logs', async () => {
    const job = server.jobs.find(j => j.status === 'Completed')!;
    server.log(job.name, 'algo-1', ['loss 0.5', 'Loss 0.4', 'saved']);
    logs = make(job.name, 100);
    logs.start();
    await jest.advanceTimersByTimeAsync(0);
    logs.search = 'loss';
    expect(logs.matches.map(l => l.message)).toEqual(['loss 0.5', 'Loss 0.4']);
    expect(logs.following).toBe(false); // a finished job: read once, done

    logs.setStream('ssm');
    expect(logs.lines).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(0);
    expect(logs.streamName).toBeNull();
    expect(server.lastCall(`jobs/${job.name}/hosts`).path).toContain(
      'stream=ssm'
    );
    server.log(job.name, 'algo-1', ['Session started'], 'ssm');
    logs.setStream('training');
    logs.setStream('ssm');
    await jest.advanceTimersByTimeAsync(0);
    expect(logs.lines.map(l => l.message)).toEqual(['Session started']);
  });

  it('keeps at most maxLines lines', async () => {
    const job = server.jobs.find(j => j.status === 'Completed')!;
    server.log(
      job.name,
      'algo-1',
      Array.from({ length: 30 }, (_, i) => `line ${i}`)
    );
    logs = new LogsModel({
      api: new SMDebugAPI(server.request),
      job: job.name,
      host: 'algo-1',
      pageSize: 7,
      maxLines: 10
    });
    logs.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(logs.lines).toHaveLength(10);
    expect(logs.dropped).toBe(20);
    expect(logs.lines[9].message).toBe('line 29');
  });
});
