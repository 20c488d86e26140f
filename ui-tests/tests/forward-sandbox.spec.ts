/**
 * Issue 22, finding 1: a forwarded app never runs with the Jupyter origin's
 * authority, and real apps (TensorBoard from PyPI) still work through the
 * proxy in the tab's sandboxed iframe.
 *
 * Both apps are started in algo-1 of the held demo job with the run API
 * (`POST /sm-debug/jobs/{job}/run`, as a script would) and shown with the
 * "Open port…" command, as the panel does.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext } from '@playwright/test';

test.use({ autoGoto: true });

const HOST = 'algo-1';

// The hostile app: one page that tries everything a page on the Jupyter
// origin could do, and answers with headers that would act on the origin.
const HOSTILE_APP = String.raw`
import http.server, sys
PAGE = b"""<!doctype html><title>hostile</title><pre id="results">running</pre>
<script>
const results = {};
async function attempt(name, action) {
  try { results[name] = 'DID: ' + String(await action()).slice(0, 200); }
  catch (error) { results[name] = 'refused: ' + error.name; }
}
(async () => {
  await attempt('origin', () => { if (self.origin !== 'null') { throw new Error(self.origin); } return 'opaque'; });
  await attempt('readCookie', () => document.cookie);
  await attempt('writeCookie', () => { document.cookie = 'planted_by_script=1; path=/'; return document.cookie; });
  await attempt('parentDocument', () => parent.document.title);
  await attempt('topLocation', () => top.location.href);
  await attempt('localStorage', () => { localStorage.setItem('planted_by_script', '1'); return localStorage.length; });
  await attempt('readTerminals', async () => (await fetch('/api/terminals', { credentials: 'include' })).status);
  await attempt('newTerminal', async () => (await fetch('/api/terminals', { method: 'POST', credentials: 'include' })).status);
  await attempt('readLab', async () => (await (await fetch('/lab', { credentials: 'include' })).text()).length);
  await attempt('serviceWorker', async () => (await navigator.serviceWorker.register('sw.js', { scope: './' })).scope);
  document.getElementById('results').textContent = JSON.stringify(results);
})();
</script>"""
class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE if self.path == "/" else b"self.addEventListener('fetch', () => {});"
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if self.path == "/" else "text/javascript")
        self.send_header("Set-Cookie", "planted_by_header=1; Path=/")
        self.send_header("Service-Worker-Allowed", "/")
        self.send_header("Content-Security-Policy", "sandbox allow-scripts allow-same-origin")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
`;

// A few scalars written with TensorBoard's own summary writer.
const SCALARS = String.raw`
from tensorboard.summary import Writer
writer = Writer("sm-debug-ui/tb/run1")
for step in range(20):
    writer.add_scalar("sm_debug_demo/loss", 1.0 / (step + 1), step=step)
writer.close()
`;

async function heldJob(request: APIRequestContext): Promise<string> {
  const listed = await request.get('/sm-debug/jobs');
  expect(listed.ok()).toBeTruthy();
  const { jobs } = await listed.json();
  const job = jobs.find((j: { name: string }) =>
    j.name.startsWith('llama-finetune-')
  );
  expect(job).toBeTruthy();
  return job.name;
}

/**
 * Runs a shell line in the host over SSH; returns its stdout.
 */
async function runInHost(
  request: APIRequestContext,
  job: string,
  line: string
): Promise<string> {
  const answer = await request.post(`/sm-debug/jobs/${job}/run`, {
    data: { argv: ['sh', '-c', line], hosts: [HOST], transport: 'ssh', timeout: 60 }
  });
  const body = await answer.json();
  expect(answer.ok(), JSON.stringify(body)).toBeTruthy();
  const result = body.hosts[HOST];
  expect(result.exit_code, JSON.stringify(result)).toBe(0);
  return result.stdout;
}

/**
 * Writes `source` to `file` in the host and starts `command` in the background;
 * returns the shell line that stops it.
 */
async function startInHost(
  request: APIRequestContext,
  job: string,
  file: string,
  source: string,
  command: string
): Promise<string> {
  const encoded = Buffer.from(source).toString('base64');
  const pid = await runInHost(
    request,
    job,
    `mkdir -p sm-debug-ui && echo ${encoded} | base64 -d > sm-debug-ui/${file} && ` +
      `(nohup ${command} > sm-debug-ui/${file}.log 2>&1 < /dev/null & echo $!)`
  );
  return `kill ${pid.trim()} 2>/dev/null; true`;
}

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

async function openPortTab(
  page: IJupyterLabPageFixture,
  job: string,
  port: number
): Promise<void> {
  await page.evaluate(
    async ({ job, host, port }) => {
      await (window as any).jupyterapp.commands.execute('sm-debug:open-port', {
        job,
        host,
        port,
        transport: 'ssh'
      });
    },
    { job, host: HOST, port }
  );
}

async function waitForApp(
  request: APIRequestContext,
  job: string,
  port: number,
  path: string
): Promise<void> {
  await expect
    .poll(
      async () =>
        (await request.get(`/sm-debug/proxy/${job}/${HOST}/${port}/${path}`))
          .status(),
      { timeout: 90000 }
    )
    .toBe(200);
}

test('a hostile app in the tab can reach nothing of JupyterLab', async ({
  page
}) => {
  const request = page.request;
  const job = await heldJob(request);
  const port = freePort();
  const terminalsBefore = await (await request.get('/api/terminals')).json();
  const stop = await startInHost(
    request,
    job,
    'hostile.py',
    HOSTILE_APP,
    `python3 sm-debug-ui/hostile.py ${port}`
  );
  try {
    const forward = await request.post(
      `/sm-debug/jobs/${job}/hosts/${HOST}/ports`,
      { data: { port, transport: 'ssh' } }
    );
    expect(forward.ok()).toBeTruthy();
    await waitForApp(request, job, port, '');
    await openPortTab(page, job, port);

    const iframe = page.locator('.jp-SMDebug-forwardTab iframe').last();
    await expect(iframe).toBeVisible();
    const sandbox = (await iframe.getAttribute('sandbox')) ?? '';
    expect(sandbox.split(/\s+/)).not.toContain('allow-same-origin');

    const results = page
      .frameLocator('.jp-SMDebug-forwardTab iframe')
      .last()
      .locator('#results');
    await expect(results).not.toHaveText('running', { timeout: 30000 });
    const attempts = JSON.parse((await results.textContent()) ?? '{}');
    test.info().annotations.push({
      type: 'hostile app',
      description: JSON.stringify(attempts)
    });
    expect(attempts.origin).toBe('DID: opaque');
    for (const name of [
      'parentDocument',
      'topLocation',
      'readLab',
      'serviceWorker'
    ]) {
      expect(attempts[name], name).toMatch(/^refused: /);
    }
    // Cookies and storage are the opaque origin's own (the proxy's in-memory
    // shim, or refused): none of Jupyter's are readable.
    expect(attempts.readCookie).toMatch(/^(refused: |DID: $)/);
    expect(attempts.writeCookie).not.toMatch(/_xsrf|username-/);
    // The API answers a request from the opaque origin (Origin: null) with
    // its cross-origin refusal, when the browser lets the page see it at all.
    for (const name of ['readTerminals', 'newTerminal']) {
      expect(attempts[name], name).toMatch(/^(refused: |DID: 40[34]$)/);
    }

    // Nothing was planted on the Jupyter origin, by script or by header.
    const cookies = await page.context().cookies();
    expect(cookies.map(c => c.name)).not.toContain('planted_by_script');
    expect(cookies.map(c => c.name)).not.toContain('planted_by_header');
    expect(
      await page.evaluate(() => localStorage.getItem('planted_by_script'))
    ).toBeNull();
    const workers = await page.evaluate(async () =>
      (await navigator.serviceWorker.getRegistrations()).map(r => r.scope)
    );
    expect(workers).toEqual([]);
    const terminalsAfter = await (await request.get('/api/terminals')).json();
    expect(terminalsAfter.length).toBe(terminalsBefore.length);
  } finally {
    await runInHost(request, job, stop);
    await request.delete(`/sm-debug/jobs/${job}/hosts/${HOST}/ports/${port}`);
  }
});

test('TensorBoard from PyPI renders its scalars in the tab', async ({
  page
}) => {
  test.setTimeout(180000);
  const request = page.request;
  const job = await heldJob(request);
  const port = freePort();
  await startInHost(request, job, 'scalars.py', SCALARS, 'true');
  await runInHost(request, job, 'python3 sm-debug-ui/scalars.py');
  const stop = await startInHost(
    request,
    job,
    'tb.sh',
    `exec python3 -m tensorboard.main --logdir sm-debug-ui/tb --host 127.0.0.1 --port ${port} --reload_interval 1`,
    'sh sm-debug-ui/tb.sh'
  );
  try {
    const forward = await request.post(
      `/sm-debug/jobs/${job}/hosts/${HOST}/ports`,
      { data: { port, transport: 'ssh' } }
    );
    expect(forward.ok()).toBeTruthy();
    await waitForApp(request, job, port, 'data/runs');
    await openPortTab(page, job, port);

    const frame = page.frameLocator('.jp-SMDebug-forwardTab iframe').last();
    // TensorBoard's own dashboard, with the run and the tag written above.
    await expect(frame.getByText('sm_debug_demo/loss').first()).toBeVisible({
      timeout: 90000
    });
    await expect(frame.getByText('run1').first()).toBeVisible();
    await page.screenshot({
      path: test.info().outputPath('tensorboard.png')
    });
  } finally {
    await runInHost(request, job, stop);
    await request.delete(`/sm-debug/jobs/${job}/hosts/${HOST}/ports/${port}`);
  }
});
