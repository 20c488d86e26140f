import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import { expand, jobRow, openPanel, report, testInfoPath } from './helpers';

const JOB = 'llama-finetune-';

/**
 * The ids of the kernels a test started in hosts, shut down after it: galata
 * tracks only kernels the page starts through /api/kernels.
 */
const started: string[] = [];

test.describe('A notebook on a host', () => {
  // The kernels are started by the server (POST /sm-debug/.../kernels), not
  // through /api/kernels: galata must not hide them from the page.
  test.use({ kernels: null, sessions: null } as any);

  test.afterEach(async ({ page }) => {
    for (const id of started.splice(0)) {
      await page.request.delete(`/api/kernels/${id}`);
    }
  });

  test('runs cells in algo-1: hostname, streamed output, interrupt, untrusted outputs', async ({
    page
  }) => {
    await openNotebook(page, 'algo-1');

    // The kernel runs in the container: its hostname; the status bar names
    // it.
    await expect(
      page
        .locator('#jp-main-statusbar')
        .getByRole('button', { name: /^Python on algo-1 · llama-finetune-/ })
    ).toBeVisible();
    await setAndRun(page, 0, 'import socket; socket.gethostname()');
    expect(await page.notebook.getCellTextOutput(0)).toEqual(["'algo-1'"]);

    // Output streams: the first line shows while the cell still runs.
    await page.notebook.addCell(
      'code',
      "import time\nprint('tick 0', flush=True)\ntime.sleep(6)\nprint('tick 1')"
    );
    await page.notebook.runCell(1, { inplace: true, wait: false });
    const ticks = (await page.notebook.getCellLocator(1))!;
    await expect(ticks.locator('.jp-OutputArea-output')).toContainText(
      'tick 0',
      { timeout: 30000 }
    );
    await expect(ticks.locator('.jp-InputPrompt')).toContainText('[*]');
    await expect(ticks.locator('.jp-OutputArea-output')).not.toContainText(
      'tick 1'
    );
    await expect(ticks.locator('.jp-OutputArea-output')).toContainText(
      'tick 1',
      { timeout: 30000 }
    );

    // Interrupt: KeyboardInterrupt in the running cell, the namespace kept.
    await page.notebook.addCell('code', 'x = 42\ntime.sleep(60)');
    await page.notebook.runCell(2, { inplace: true, wait: false });
    const sleeping = (await page.notebook.getCellLocator(2))!;
    await expect(sleeping.locator('.jp-InputPrompt')).toContainText('[*]');
    // The interrupt is sent once the cell is under way in the host.
    await expect
      .poll(() => kernelStatus(page), { timeout: 30000 })
      .toBe('busy');
    const sent = Date.now();
    await page.evaluate(() =>
      (window as any).jupyterapp.commands.execute('notebook:interrupt-kernel')
    );
    await expect(sleeping.locator('.jp-OutputArea-output')).toContainText(
      'KeyboardInterrupt',
      { timeout: 30000 }
    );
    report('interrupt-to-KeyboardInterrupt', Date.now() - sent);
    await page.notebook.addCell('code', 'x + 1');
    await page.notebook.runCell(3, { inplace: true });
    expect(await page.notebook.getCellTextOutput(3)).toEqual(['43']);
    // The README's picture: the panel and a notebook on algo-1.
    await page.screenshot({ path: testInfoPath('notebook.png') });

    // A container's HTML shows, its script does not run, and the cell stays
    // untrusted (so the saved notebook is not signed as trusted either).
    // (One line: the editor indents typed lines by itself.)
    await page.notebook.addCell(
      'code',
      "type('Page', (), {'_repr_html_': lambda self: " +
        "\"<b class='from-host'>bold</b>" +
        '<script>window.smDebugPwned = 1</script>"})()'
    );
    await page.notebook.runCell(4, { inplace: true });
    const html = (await page.notebook.getCellLocator(4))!;
    await expect(html.locator('b.from-host')).toHaveText('bold');
    expect(await page.evaluate(() => (window as any).smDebugPwned)).toBe(
      undefined
    );
    expect(await cellTrusted(page, 4)).toBe(false);
    expect(await cellTrusted(page, 0)).toBe(false);
  });

  test('plots with matplotlib when the host has it', async ({ page }) => {
    await openNotebook(page, 'algo-1');
    await setAndRun(
      page,
      0,
      "import importlib.util; print(importlib.util.find_spec('matplotlib') is not None)"
    );
    const has = (await page.notebook.getCellTextOutput(0))?.join('').trim();
    test.skip(
      has !== 'True',
      "algo-1's Python has no matplotlib (the demo's hosts run the test venv's Python)"
    );
    await page.notebook.addCell(
      'code',
      [
        'import matplotlib.pyplot as plt',
        'plt.plot([3, 1, 2])',
        'plt.show()'
      ].join('\n')
    );
    await page.notebook.runCell(1, { inplace: true });
    const cell = (await page.notebook.getCellLocator(1))!;
    await expect(cell.locator('.jp-OutputArea-output img')).toBeVisible();
  });

  test('a console on algo-1 is titled after the host and runs there', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, JOB);
    await expand(row);
    const button = row.getByRole('button', {
      name: /Python console on algo-1 of llama-finetune-/
    });
    const [response] = await Promise.all([kernelStarted(page), button.click()]);
    started.push((await response.json()).kernel.id);
    const tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: /Python on algo-1 · llama-finetune-/
    });
    await expect(tab).toBeVisible({ timeout: 30000 });
    // The button is free again once the console is open.
    await expect(button).toHaveAttribute('aria-disabled', 'false');

    const console = page.locator('.jp-ConsolePanel:not(.lm-mod-hidden)');
    const prompt = console.locator('.jp-CodeConsole-promptCell .cm-content');
    await prompt.click();
    await page.keyboard.type('import socket; socket.gethostname()');
    await page.keyboard.press('Shift+Enter');
    await expect(
      console.locator('.jp-CodeConsole-content .jp-OutputArea-output').last()
    ).toHaveText("'algo-1'", { timeout: 30000 });

    // Closing the console shuts its kernel down (nothing else uses it).
    const id = started[started.length - 1];
    await tab.locator('.lm-TabBar-tabCloseIcon').click();
    await expect
      .poll(
        async () => {
          const kernels = await (await page.request.get('/api/kernels')).json();
          return kernels.some((kernel: { id: string }) => kernel.id === id);
        },
        { timeout: 30000 }
      )
      .toBe(false);
  });
});

/**
 * Click Notebook on `host` of the demo's fine-tuning job and wait for the new
 * notebook, its kernel ready. Times the click to the kernel's idle status.
 */
async function openNotebook(
  page: IJupyterLabPageFixture,
  host: string
): Promise<Locator> {
  const panel = await openPanel(page);
  const row = jobRow(panel, JOB);
  await expand(row);
  const button = row.getByRole('button', {
    name: new RegExp(`New notebook on ${host} of ${JOB}`)
  });
  await expect(button).toHaveAttribute('aria-disabled', 'false');
  const clicked = Date.now();
  const [response] = await Promise.all([kernelStarted(page), button.click()]);
  expect(response.status()).toBe(201);
  started.push((await response.json()).kernel.id);
  const notebook = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
  await expect(notebook).toBeVisible({ timeout: 30000 });
  await expect.poll(() => kernelStatus(page), { timeout: 30000 }).toBe('idle');
  report(`notebook-ready ${host}`, Date.now() - clicked);
  return notebook;
}

function kernelStarted(page: IJupyterLabPageFixture) {
  return page.waitForResponse(
    response =>
      /\/sm-debug\/jobs\/[^/]+\/hosts\/[^/]+\/kernels(\?|$)/.test(
        response.url()
      ) && response.request().method() === 'POST',
    { timeout: 30000 }
  );
}

async function setAndRun(
  page: IJupyterLabPageFixture,
  index: number,
  source: string
): Promise<void> {
  await page.notebook.setCell(index, 'code', source);
  await page.notebook.runCell(index, { inplace: true });
}

/**
 * The current notebook's kernel status ('idle', 'busy', ...).
 */
function kernelStatus(page: IJupyterLabPageFixture): Promise<string> {
  return page.evaluate(() => {
    const widget = (window as any).jupyterapp.shell.currentWidget;
    return String(widget?.sessionContext?.session?.kernel?.status ?? '');
  });
}

/**
 * Whether cell `index` of the current notebook is trusted.
 */
function cellTrusted(
  page: IJupyterLabPageFixture,
  index: number
): Promise<boolean> {
  return page.evaluate(i => {
    const widget = (window as any).jupyterapp.shell.currentWidget;
    return !!widget.content.model.cells.get(i).trusted;
  }, index);
}
