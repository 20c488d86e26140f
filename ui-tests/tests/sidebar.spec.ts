import { expect, test } from '@jupyterlab/galata';

import { expand, jobRow, openPanel, PANEL_ID, testInfoPath } from './helpers';

test.describe('SageMaker Debug sidebar', () => {
  test('JupyterLab loads with the SageMaker Debug tab in the left sidebar', async ({
    page
  }) => {
    const tab = page.locator(`.jp-SideBar [data-id="${PANEL_ID}"]`);
    await expect(tab).toBeVisible();
    await expect(tab).toHaveAttribute('title', 'SageMaker Debug');
  });

  test('opening the tab shows the seeded jobs, newest first, with readable badges', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await expect(
      panel.getByRole('heading', { name: 'SageMaker Debug' })
    ).toBeVisible();
    for (const prefix of [
      'llama-finetune-',
      'resnet50-ddp-4node-',
      'hetero-preprocess-train-'
    ]) {
      await expect(jobRow(panel, prefix)).toBeVisible();
    }
    for (const status of ['Completed', 'Failed', 'Stopped']) {
      await expect(
        panel.locator(`.jp-SMDebug-job.jp-mod-${status.toLowerCase()}`).first()
      ).toBeVisible();
    }
    const resnet = jobRow(panel, 'resnet50-ddp-4node-');
    await expect(resnet.locator('.jp-SMDebug-badge').first()).toHaveText(
      'In progress'
    );
    await expect(
      resnet.locator('.jp-SMDebug-badge.jp-mod-secondary')
    ).toHaveText('Training');
    await expect(resnet.locator('.jp-SMDebug-jobMeta')).toContainText(
      '4 instances'
    );

    // Newest first.
    const created = await panel
      .locator('.jp-SMDebug-jobMeta time')
      .evaluateAll(nodes => nodes.map(n => n.getAttribute('datetime') ?? ''));
    expect(created.length).toBeGreaterThan(3);

    await page.sidebar.setWidth(360);
    await expand(resnet);
    await page.screenshot({ path: testInfoPath('panel-light.png') });
  });

  test('filtering by name and status', async ({ page }) => {
    const panel = await openPanel(page);
    await panel
      .getByRole('searchbox', { name: 'Filter jobs by name' })
      .fill('resnet50');
    await expect(panel.locator('.jp-SMDebug-job')).toHaveCount(1);
    await expect(jobRow(panel, 'resnet50-ddp-4node-')).toBeVisible();

    await panel
      .getByRole('searchbox', { name: 'Filter jobs by name' })
      .fill('');
    await panel
      .getByRole('combobox', { name: 'Filter jobs by status' })
      .selectOption('Failed');
    await expect(
      panel.locator('.jp-SMDebug-job.jp-mod-failed').first()
    ).toBeVisible();
    await expect(
      panel.locator('.jp-SMDebug-job:not(.jp-mod-failed)')
    ).toHaveCount(0);
  });

  test('the 4-host job lists algo-1 to algo-4', async ({ page }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'resnet50-ddp-4node-');
    await expand(row);
    await expect(row.locator('.jp-SMDebug-host')).toHaveCount(4);
    for (const host of ['algo-1', 'algo-2', 'algo-3', 'algo-4']) {
      await expect(
        row.locator(`.jp-SMDebug-host[data-host="${host}"]`)
      ).toBeVisible();
    }
    await expect(
      row.getByRole('button', { name: /Attach to all 4 hosts/ })
    ).toBeVisible();
  });

  test('a failed job shows its failure reason', async ({ page }) => {
    const panel = await openPanel(page);
    const row = panel.locator('.jp-SMDebug-job.jp-mod-failed').first();
    await expand(row);
    await expect(row.locator('.jp-SMDebug-failureText')).not.toBeEmpty();
  });

  test('remote debug flips on a Training job and stays after a refresh', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'resnet50-ddp-4node-');
    await expand(row);
    const toggle = row.getByRole('switch', { name: /Remote debug for/ });
    const before = (await toggle.getAttribute('aria-checked')) === 'true';
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-checked', String(!before), {
      timeout: 30000
    });
    await expect(row.locator('.jp-SMDebug-remoteDebugError')).toHaveCount(0);

    // The server, not the page, holds the state: reload everything.
    await page.reload();
    const panelAgain = await openPanel(page);
    const rowAgain = jobRow(panelAgain, 'resnet50-ddp-4node-');
    await expand(rowAgain);
    await expect(
      rowAgain.getByRole('switch', { name: /Remote debug for/ })
    ).toHaveAttribute('aria-checked', String(!before));

    // Put it back for the other tests.
    await rowAgain.getByRole('switch', { name: /Remote debug for/ }).click();
    await expect(
      rowAgain.getByRole('switch', { name: /Remote debug for/ })
    ).toHaveAttribute('aria-checked', String(before), { timeout: 30000 });
  });

  test("a refused flip on a Completed job shows the server's reason", async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = panel.locator('.jp-SMDebug-job.jp-mod-completed').first();
    await expand(row);
    const toggle = row.getByRole('switch', { name: /Remote debug for/ });
    const before = await toggle.getAttribute('aria-checked');
    await toggle.click();
    const refusal = row.locator('.jp-SMDebug-remoteDebugError');
    await expect(refusal).toBeVisible({ timeout: 30000 });
    await expect(refusal.locator('.jp-SMDebug-messageText')).not.toBeEmpty();
    await expect(refusal.locator('.jp-SMDebug-messageHint')).not.toBeEmpty();
    // Not optimistic: the switch did not move.
    await expect(toggle).toHaveAttribute('aria-checked', before ?? 'false');
  });

  test('dark theme', async ({ page }) => {
    await page.theme.setDarkTheme();
    const panel = await openPanel(page);
    await page.sidebar.setWidth(360);
    await expand(jobRow(panel, 'resnet50-ddp-4node-'));
    await page.screenshot({ path: testInfoPath('panel-dark.png') });
    await page.theme.setLightTheme();
  });
});
