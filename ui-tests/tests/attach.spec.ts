import { expect, test } from '@jupyterlab/galata';

import {
  attachAndTimePrompt,
  expand,
  jobRow,
  openPanel,
  PANEL_ID,
  report,
  terminalTab,
  terminalText,
  testInfoPath,
  typeInTerminal
} from './helpers';

test.describe('Attach', () => {
  // The terminals are created by the server, not by the page: galata must not
  // hide them.
  test.use({ terminals: null } as any);

  test('Attach to algo-3 over SSH opens a shell on that host', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await page.sidebar.setWidth(360);
    const row = jobRow(panel, 'resnet50-ddp-4node-');
    await expand(row);
    await row
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssh');
    const attach = row.getByRole('button', {
      name: /Attach to algo-3 of .* over SSH/
    });

    const ms = await attachAndTimePrompt(
      page,
      attach,
      'algo-3 · resnet50-ddp-4node-'
    );
    report('attach-to-prompt SSH', ms);

    const tab = terminalTab(page, 'algo-3', 'resnet50-ddp-4node-');
    await expect(tab).toBeVisible();
    await typeInTerminal(page, 'echo "host=$SM_CURRENT_HOST"');
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(/host=algo-3/);

    // A second click focuses the same tab instead of opening another.
    await page.sidebar.openTab(PANEL_ID);
    await attach.click();
    await expect(
      terminalTab(page, 'algo-3', 'resnet50-ddp-4node-')
    ).toHaveCount(1);

    // Ending the shell shows in the panel; the tab either closes (JupyterLab's
    // terminal setting closeOnExit, on by default) or says "(ended)".
    await typeInTerminal(page, 'exit');
    await expect(
      row.locator('.jp-SMDebug-host[data-host="algo-3"] .jp-mod-ended')
    ).toBeVisible({ timeout: 30000 });
    await expect(tab.filter({ hasNotText: '(ended)' })).toHaveCount(0);
  });

  test('Attach to algo-1 over SSM (built-in client) opens a shell on that host', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await page.sidebar.setWidth(360);

    // The header says which SSM client an attach runs: the demo has no
    // session-manager-plugin, so the built-in one.
    await expect(panel.locator('.jp-SMDebug-ssmClient')).toHaveText(
      'SSM: built-in client'
    );

    const row = jobRow(panel, 'llama-finetune-');
    await expand(row);
    await expect(
      row.getByRole('switch', { name: /Remote debug for/ })
    ).toHaveAttribute('aria-checked', 'true');
    await expect(row.locator('.jp-SMDebug-host')).toHaveCount(1);
    await row
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssm');
    const attach = row.getByRole('button', {
      name: /Attach to algo-1 of llama-finetune-.* over SSM/
    });

    const ms = await attachAndTimePrompt(
      page,
      attach,
      'algo-1 · llama-finetune-'
    );
    report('attach-to-prompt SSM', ms);

    const tab = terminalTab(page, 'algo-1', 'llama-finetune-');
    await expect(tab).toBeVisible();
    await typeInTerminal(page, 'echo host=$SM_CURRENT_HOST');
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(/^host=algo-1$/m);
    await expect(
      row.locator('.jp-SMDebug-host[data-host="algo-1"] .jp-mod-open')
    ).toBeVisible();
    await typeInTerminal(page, 'ls');
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(/input/);
    await page.mouse.move(700, 400);
    await page.screenshot({ path: testInfoPath('terminal.png') });

    await typeInTerminal(page, 'exit');
    await expect(
      row.locator('.jp-SMDebug-host[data-host="algo-1"] .jp-mod-ended')
    ).toBeVisible({ timeout: 30000 });
  });
});
