import { expect, test } from '@jupyterlab/galata';

import {
  expand,
  jobRow,
  openPanel,
  PANEL_ID,
  sidebarScreenshot
} from './helpers';

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
      '4 × ml.p4d.24xlarge'
    );

    // Newest first.
    const created = await panel
      .locator('.jp-SMDebug-jobMeta time')
      .evaluateAll(nodes => nodes.map(n => n.getAttribute('datetime') ?? ''));
    expect(created.length).toBeGreaterThan(3);

    // For the docs, at JupyterLab's default sidebar width: a job ready to
    // attach, its hosts in two instance groups.
    const hetero = jobRow(panel, 'hetero-preprocess-train-');
    await expand(hetero);
    await expect(hetero.getByRole('switch')).toHaveAttribute(
      'aria-checked',
      'true'
    );
    await expect(hetero.locator('.jp-SMDebug-host')).toHaveCount(3);
    await page.mouse.move(700, 400); // no hover highlight
    await sidebarScreenshot(page, 'panel-light.png');
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
    // Failed jobs, and running jobs whose failed containers are held (issue 23).
    await expect(
      panel.locator('.jp-SMDebug-job:not(.jp-mod-failed):not(.jp-mod-held)')
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

  test('dark theme', async ({ page }) => {
    await page.theme.setDarkTheme();
    const panel = await openPanel(page);
    // For the docs: the failed job, with Debug a copy.
    const failed = panel.locator(
      '.jp-SMDebug-job.jp-mod-failed[data-job^="mistral-7b-sft-"]'
    );
    await expand(failed);
    await expect(
      failed.getByRole('button', { name: /^Debug a copy of/ })
    ).toBeVisible();
    await failed
      .locator('.jp-SMDebug-detail')
      .evaluate(node => node.scrollIntoView({ block: 'end' }));
    await page.mouse.move(700, 400);
    await sidebarScreenshot(page, 'panel-dark.png');
    await page.theme.setLightTheme();
  });

  test('job rows work from the keyboard', async ({ page }) => {
    const panel = await openPanel(page);
    const headers = panel.locator(
      '.jp-SMDebug-job > .jp-SMDebug-jobHeaderRow > .jp-SMDebug-jobHeader'
    );
    const first = headers.first();
    await first.focus();

    // Down and Up move between rows; Home and End to the ends.
    await page.keyboard.press('ArrowDown');
    await expect(headers.nth(1)).toBeFocused();
    await page.keyboard.press('End');
    await expect(headers.last()).toBeFocused();
    await page.keyboard.press('Home');
    await expect(first).toBeFocused();
    await page.keyboard.press('ArrowUp');
    await expect(first).toBeFocused();

    // Enter and Space toggle; Right opens and Left closes.
    await page.keyboard.press('Enter');
    await expect(first).toHaveAttribute('aria-expanded', 'true');
    await page.keyboard.press('Space');
    await expect(first).toHaveAttribute('aria-expanded', 'false');
    await page.keyboard.press('ArrowRight');
    await expect(first).toHaveAttribute('aria-expanded', 'true');
    await expect(panel.locator('.jp-SMDebug-detail').first()).toBeVisible({
      timeout: 30000
    });
    await page.keyboard.press('ArrowLeft');
    await expect(first).toHaveAttribute('aria-expanded', 'false');

    // The focus shows: an outline in the theme's focus color.
    const outline = await first.evaluate(node => {
      const style = getComputedStyle(node);
      return { style: style.outlineStyle, width: style.outlineWidth };
    });
    expect(outline).toEqual({ style: 'solid', width: '2px' });
  });

  test('every button says what it does', async ({ page }) => {
    const panel = await openPanel(page);
    await page.sidebar.setWidth(360);
    for (const prefix of ['resnet50-ddp-4node-', 'mistral-7b-sft-']) {
      await expand(jobRow(panel, prefix));
    }
    const buttons = panel.locator('button');
    expect(await buttons.count()).toBeGreaterThan(10);
    const unlabelled = await buttons.evaluateAll(nodes =>
      nodes
        .filter(node => !(node.getAttribute('aria-label') ?? '').trim())
        .map(node => node.outerHTML.slice(0, 120))
    );
    expect(unlabelled).toEqual([]);
  });

  test('no matching job: says so, and the filters can be cleared', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const search = panel.getByRole('searchbox', {
      name: 'Filter jobs by name'
    });
    await search.fill('no-such-job-anywhere');
    await expect(panel.locator('.jp-SMDebug-job')).toHaveCount(0);
    await expect(panel.locator('.jp-SMDebug-emptyState')).toContainText(
      'No training jobs match these filters.'
    );
    await panel.getByRole('button', { name: /Clear the filters/ }).click();
    await expect(search).toHaveValue('');
    await expect(panel.locator('.jp-SMDebug-job').first()).toBeVisible({
      timeout: 30000
    });
  });
});
