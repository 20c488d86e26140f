import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, SMDebugError } from '../request';

/**
 * Server settings whose fetch answers every request with `answer`, and
 * records what was asked.
 */
function settingsAnswering(
  answer: () => Promise<Response>,
  calls: Request[] = []
): ServerConnection.ISettings {
  const fetch = jest.fn(async (input: RequestInfo, init?: RequestInit) => {
    calls.push(new Request(input, init));
    return answer();
  });
  return ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: fetch as unknown as typeof window.fetch
  });
}

function json(status: number, body: unknown): Promise<Response> {
  return Promise.resolve(
    new Response(JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' }
    })
  );
}

describe('requestAPI', () => {
  it('returns the parsed body of a 2xx answer from /sm-debug/<endpoint>', async () => {
    const calls: Request[] = [];
    const settings = settingsAnswering(
      () => json(200, { jobs: [], next_token: null }),
      calls
    );
    const page = await requestAPI<{ jobs: unknown[] }>(
      'jobs?status=InProgress',
      {},
      settings
    );
    expect(page).toEqual({ jobs: [], next_token: null });
    // ServerConnection appends a cache-busting parameter to GETs.
    expect(calls[0].url).toMatch(
      /^http:\/\/localhost:8888\/sm-debug\/jobs\?status=InProgress(&\d+)?$/
    );
  });

  it("throws an SMDebugError carrying the server's code, message and hint", async () => {
    const settings = settingsAnswering(() =>
      json(409, {
        error: {
          code: 'WrongState',
          message: 'Remote debug can only change while the job is Training.',
          hint: 'Start a new job with remote debug enabled.'
        }
      })
    );
    const error = await requestAPI('jobs/x/remote-debug', {}, settings).catch(
      (e: unknown) => e
    );
    expect(error).toBeInstanceOf(SMDebugError);
    const smError = error as SMDebugError;
    expect(smError.status).toBe(409);
    expect(smError.code).toBe('WrongState');
    expect(smError.message).toBe(
      'Remote debug can only change while the job is Training.'
    );
    expect(smError.hint).toBe('Start a new job with remote debug enabled.');
    expect(smError.isTransient).toBe(false);
  });

  it('marks throttling as transient', async () => {
    const settings = settingsAnswering(() =>
      json(429, {
        error: { code: 'ThrottlingException', message: 'Slow down' }
      })
    );
    const error = (await requestAPI('jobs', {}, settings).catch(
      (e: unknown) => e
    )) as SMDebugError;
    expect(error.code).toBe('ThrottlingException');
    expect(error.hint).toBe('');
    expect(error.isTransient).toBe(true);
  });

  it('explains a 404 that is not ours: the server extension is missing', async () => {
    const settings = settingsAnswering(() =>
      Promise.resolve(
        new Response('<html>404: Not Found</html>', {
          status: 404,
          statusText: 'Not Found'
        })
      )
    );
    const error = (await requestAPI('jobs', {}, settings).catch(
      (e: unknown) => e
    )) as SMDebugError;
    expect(error.status).toBe(404);
    expect(error.code).toBe('HTTP404');
    expect(error.message).toBe('Not Found');
    expect(error.hint).toMatch(/server extension/);
  });

  it("keeps Jupyter's own {message} error body", async () => {
    const settings = settingsAnswering(() =>
      json(403, { message: "'_xsrf' argument missing from POST", reason: null })
    );
    const error = (await requestAPI('jobs', {}, settings).catch(
      (e: unknown) => e
    )) as SMDebugError;
    expect(error.message).toBe("'_xsrf' argument missing from POST");
    expect(error.hint).toMatch(/Reload/);
  });

  it('turns a network failure into status 0', async () => {
    const settings = settingsAnswering(() =>
      Promise.reject(new TypeError('Failed to fetch'))
    );
    const error = (await requestAPI('environment', {}, settings).catch(
      (e: unknown) => e
    )) as SMDebugError;
    expect(error).toBeInstanceOf(SMDebugError);
    expect(error.status).toBe(0);
    expect(error.code).toBe('NetworkError');
    expect(error.message).toMatch(/Failed to fetch/);
    expect(error.isTransient).toBe(true);
  });
});
