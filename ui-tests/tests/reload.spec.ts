import { expect, galata, test } from '@jupyterlab/galata';

import {
  expand,
  jobRow,
  openPanel,
  PROMPT,
  terminalTab,
  terminalText,
  typeInTerminal
} from './helpers';

const JOB = 'resnet50-ddp-4node-';

/**
 * Reload the page and wait for the app, but not for a Launcher (galata's
 * default): the restored terminal may be all the main area holds.
 */
async function reload(page: any): Promise<void> {
  await page.reload({ waitForIsReady: false });
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
  await page.evaluate(() => (window as any).jupyterapp.restored);
}

/**
 * The names of the terminals the server runs.
 */
async function serverTerminals(page: any): Promise<string[]> {
  const response = await page.request.get('/api/terminals');
  return ((await response.json()) as { name: string }[]).map(t => t.name);
}

/**
 * The server's name of the current terminal tab's session.
 */
async function currentTerminalName(page: any): Promise<string> {
  return page.evaluate(
    () => (window as any).jupyterapp.shell.currentWidget.content.session.name
  );
}

test.describe('After a page reload', () => {
  // The terminals are created by the server, not by the page: galata must not
  // hide them.
  test.use({ terminals: null } as any);

  test('a session that still runs comes back as the container session', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, JOB);
    await expand(row);
    await row
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssh');
    await row
      .getByRole('button', { name: /Attach to algo-2 of .* over SSH/ })
      .click();
    const tab = terminalTab(page, 'algo-2', JOB);
    await expect(tab).toBeVisible({ timeout: 30000 });
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(PROMPT);
    await typeInTerminal(page, 'export MARK=set-before-reload');
    const name = await currentTerminalName(page);
    expect(name).toMatch(/^smdebug_.*__algo_2__ssh$/);

    await reload(page);

    // Ours again: our title, and the very same shell.
    await expect(tab).toBeVisible({ timeout: 30000 });
    await tab.click();
    expect(await currentTerminalName(page)).toBe(name);
    await typeInTerminal(page, 'echo "$MARK on $SM_CURRENT_HOST"');
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(/^set-before-reload on algo-2$/m);

    // The panel shows it attached.
    const panelAgain = await openPanel(page);
    const rowAgain = jobRow(panelAgain, JOB);
    await expand(rowAgain);
    await rowAgain
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssh');
    await expect(
      rowAgain.locator('.jp-SMDebug-host[data-host="algo-2"] .jp-mod-open')
    ).toBeVisible();

    await tab.click();
    await typeInTerminal(page, 'exit');
    await expect
      .poll(() => serverTerminals(page), { timeout: 30000 })
      .not.toContain(name);
  });

  test.describe('when the session ended while the page was away', () => {
    // Keep the ended tab in the layout, as after a server restart.
    test.use({
      mockSettings: {
        ...galata.DEFAULT_SETTINGS,
        '@jupyterlab/terminal-extension:plugin': { closeOnExit: false }
      }
    });

    test('its restored tab is closed, not left as a local shell under our name', async ({
      page
    }) => {
      const panel = await openPanel(page);
      const row = jobRow(panel, JOB);
      await expand(row);
      await row
        .getByRole('combobox', { name: /Transport for/ })
        .selectOption('ssh');
      await row
        .getByRole('button', { name: /Attach to algo-4 of .* over SSH/ })
        .click();
      const tab = terminalTab(page, 'algo-4', JOB);
      await expect(tab).toBeVisible({ timeout: 30000 });
      await expect
        .poll(() => terminalText(page), { timeout: 30000 })
        .toMatch(PROMPT);
      const name = await currentTerminalName(page);
      await typeInTerminal(page, 'exit');
      await expect(tab).toContainText('(ended)', { timeout: 30000 });
      await expect
        .poll(() => serverTerminals(page), { timeout: 30000 })
        .not.toContain(name);

      // JupyterLab restores the tab by name and, the terminal being gone,
      // starts a local shell under it; the extension closes both.
      await reload(page);

      const notice = page.locator('.Toastify__toast', {
        hasText: /algo-4 of resnet50-ddp-4node-.* ended while the page was away/
      });
      await expect(notice).toBeVisible({ timeout: 30000 });
      await expect(tab).toHaveCount(0);
      await expect(
        page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
          hasText: 'smdebug_'
        })
      ).toHaveCount(0);
      await expect
        .poll(() => serverTerminals(page), { timeout: 30000 })
        .not.toContain(name);

      // Attach again from the notice: a real session on algo-4.
      await notice.getByRole('button', { name: 'Attach again' }).click();
      await expect(tab).toBeVisible({ timeout: 30000 });
      await expect
        .poll(() => terminalText(page), { timeout: 30000 })
        .toMatch(PROMPT);
      await typeInTerminal(page, 'echo host=$SM_CURRENT_HOST');
      await expect
        .poll(() => terminalText(page), { timeout: 30000 })
        .toMatch(/^host=algo-4$/m);
      await typeInTerminal(page, 'exit');
    });
  });

  test('the host views come back: stacks and host state read anew, the run tab offers its command', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, JOB);
    await expand(row);
    await row
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssh');
    const tabOf = (title: RegExp) =>
      page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: title });
    const stacks = tabOf(/Stacks · resnet50-ddp-4node-.* · SSH/);
    const state = tabOf(/Hosts · resnet50-ddp-4node-.* · SSH/);
    const run = tabOf(/Run · resnet50-ddp-4node-.* · SSH/);
    await row.getByRole('button', { name: /Python stacks of every/ }).click();
    await expect(stacks).toBeVisible();
    await row
      .getByRole('button', { name: /GPUs, load, memory and disk/ })
      .click();
    await expect(state).toBeVisible();
    await row.getByRole('button', { name: /Run one command on every/ }).click();
    await expect(run).toBeVisible();
    const command = page.locator('.jp-SMDebug-runInput');
    await command.fill('echo restored-$SM_CURRENT_HOST');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect(page.locator('.jp-SMDebug-runHost').first()).toContainText(
      'restored-algo-',
      { timeout: 60000 }
    );

    await reload(page);

    await expect(stacks).toBeVisible({ timeout: 30000 });
    await expect(state).toBeVisible();
    await expect(run).toBeVisible();
    // The run tab offers the command again, without running it.
    await run.click();
    await expect(page.locator('.jp-SMDebug-runInput')).toHaveValue(
      'echo restored-$SM_CURRENT_HOST'
    );
    await expect(page.locator('.jp-SMDebug-runHost')).toHaveCount(0);
    // Stacks are dumped anew.
    await stacks.click();
    await expect(
      page.locator('.jp-SMDebug-stackGroup.jp-mod-outlier').first()
    ).toBeVisible({ timeout: 90000 });
    for (const tab of [stacks, state, run]) {
      await tab.locator('.lm-TabBar-tabCloseIcon').click();
    }
  });
});
