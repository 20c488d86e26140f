import { expect, test } from '@jupyterlab/galata';

import { expand, jobRow, openPanel } from './helpers';

/**
 * What the panel shows (issue 11), at JupyterLab's default sidebar width.
 */
test.describe('what the panel shows', () => {
  test('at the default sidebar width every Attach button lies inside the panel', async ({
    page
  }) => {
    const panel = await openPanel(page);
    for (const prefix of [
      'hetero-preprocess-train-',
      'resnet50-ddp-4node-',
      'gpt2-pretrain-ddp-',
      'llama-finetune-'
    ]) {
      await expand(jobRow(panel, prefix));
    }
    const box = (await panel.boundingBox())!;
    expect(box.width).toBeLessThan(400); // the default, not a widened sidebar
    const buttons = await panel.locator('.jp-SMDebug-attach').all();
    expect(buttons.length).toBeGreaterThanOrEqual(10);
    for (const button of buttons) {
      await button.scrollIntoViewIfNeeded();
      const b = (await button.boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(box.x);
      expect(b.x + b.width).toBeLessThanOrEqual(box.x + box.width);
    }
    // No host row scrolls sideways; nothing in the panel does.
    const overflowing = await panel.evaluate(node =>
      Array.from(
        node.querySelectorAll<HTMLElement>(
          '.jp-SMDebug-hostLine, .jp-SMDebug-jobHeaderRow, .jp-SMDebug-view'
        )
      )
        .filter(el => el.scrollWidth > el.clientWidth + 1)
        .map(el => el.className)
    );
    expect(overflowing).toEqual([]);

    // Job names break at hyphens, never inside a word.
    const midWord = await panel.evaluate(node => {
      const bad: string[] = [];
      for (const el of node.querySelectorAll('.jp-SMDebug-jobName')) {
        const text = el.firstChild;
        if (!text || text.nodeType !== Node.TEXT_NODE) {
          continue;
        }
        const content = text.textContent ?? '';
        const range = document.createRange();
        let lastTop: number | null = null;
        for (let i = 0; i < content.length; i++) {
          range.setStart(text, i);
          range.setEnd(text, i + 1);
          const top = range.getBoundingClientRect().top;
          if (lastTop !== null && top > lastTop + 2 && content[i - 1] !== '-') {
            bad.push(`${content.slice(0, i)}|${content.slice(i)}`);
          }
          lastTop = top;
        }
      }
      return bad;
    });
    expect(midWord).toEqual([]);

    // Rows say instance type × count, elapsed time, and link to the console.
    const resnet = jobRow(panel, 'resnet50-ddp-4node-');
    await expect(resnet.locator('.jp-SMDebug-instances')).toHaveText(
      '4 × ml.p4d.24xlarge'
    );
    await expect(resnet.locator('.jp-SMDebug-elapsed')).toHaveText(
      /\d+ h \d\d min/
    );
    await expect(
      resnet.getByRole('link', {
        name: /Open resnet50-ddp-4node-.* in the AWS console/
      })
    ).toHaveAttribute(
      'href',
      /^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/sagemaker\/home\?region=[a-z0-9-]+#\/jobs\/resnet50-ddp-4node-/
    );
    const done = panel.locator('.jp-SMDebug-job.jp-mod-completed').first();
    await expect(
      done.locator('.jp-SMDebug-elapsed.jp-mod-billable')
    ).toHaveAttribute('title', /^Billable time/);
  });

  test('a held job says it is held, for how long, its last lines, and Stop', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'gpt2-pretrain-ddp-');
    await expand(row);
    await expect(row.locator('.jp-SMDebug-heldTitle')).toHaveText(
      /^Failed · held for debugging · \d+ min left$/,
      { timeout: 30000 }
    );
    // The collapsed row's badge is short (it fits the sidebar); its title says it all.
    const badge = row.locator('.jp-SMDebug-badge.jp-mod-held');
    await expect(badge).toHaveText(/^Held · \d+ min left$/);
    await expect(badge).toHaveAttribute(
      'title',
      /held for debugging · \d+ min left/
    );
    await expect(row.locator('.jp-SMDebug-heldLines')).toContainText(
      'FileNotFoundError'
    );
    await expect(
      row
        .locator('.jp-SMDebug-held')
        .getByRole('button', { name: /^Stop gpt2-pretrain-ddp-/ })
    ).toBeVisible();
    // The details were scrolled into view when the row opened.
    await expect(row.locator('.jp-SMDebug-held')).toBeInViewport();
  });

  test('Stop asks first, then stops the job', async ({ page }) => {
    // A job of our own to stop: a debug copy of the failed demo job.
    const listed = await page.request.get(
      '/sm-debug/jobs?status=Failed&name_contains=mistral'
    );
    const failed = (await listed.json()).jobs[0].name as string;
    const name = `stop-me-${Date.now() % 100000000}`;
    const created = await page.request.post(
      `/sm-debug/jobs/${failed}/debug-copy`,
      { data: { hold_seconds: 0, name } }
    );
    expect(created.status()).toBe(201);

    const panel = await openPanel(page);
    await panel
      .getByRole('searchbox', { name: 'Filter jobs by name' })
      .fill(name);
    const row = jobRow(panel, name);
    await expand(row);
    const stop = row.getByRole('button', { name: `Stop ${name}` });
    await stop.click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText(`Stop ${name}?`);
    await expect(dialog).toContainText('cannot be undone');
    await dialog
      .getByRole('button', { name: 'Cancel: keep the job running' })
      .click();
    await expect(dialog).toHaveCount(0);
    await expect(row.locator('.jp-SMDebug-badge').first()).toHaveText(
      'In progress'
    );

    await stop.click();
    await page
      .locator('.jp-Dialog')
      .getByRole('button', { name: `Stop the training job ${name}` })
      .click();
    await expect(row.locator('.jp-SMDebug-badge').first()).toHaveText(
      /Stopping|Stopped/,
      { timeout: 30000 }
    );
    await expect(row.getByRole('button', { name: `Stop ${name}` })).toHaveCount(
      0
    );
  });

  test('the remote-debug switch is disabled, with the reason, where it can only fail', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const cases: [string, RegExp][] = [
      ['bert-base-sentiment-', /Completed: a finished job cannot be changed/],
      ['sdxl-lora-dreambooth-', /Starting: remote debug can be changed once/],
      ['isolated-fraud-scoring-', /network isolation/]
    ];
    for (const [prefix, reason] of cases) {
      const row = jobRow(panel, prefix);
      await expand(row);
      const toggle = row.getByRole('switch', { name: /Remote debug for/ });
      await expect(toggle).toHaveAttribute('aria-disabled', 'true');
      await expect(toggle).toHaveAttribute('title', reason);
      const before = await toggle.getAttribute('aria-checked');
      // Clicked anyway: nothing is asked of the server, nothing moves.
      await toggle.click({ force: true });
      await expect(toggle).toHaveAttribute('aria-checked', before ?? 'false');
      await expect(row.locator('.jp-SMDebug-remoteDebugError')).toHaveCount(0);
    }
    // The network-isolation note is said once, not by each control.
    const isolated = jobRow(panel, 'isolated-fraud-scoring-');
    await expect(isolated.getByText(/network isolation/)).toHaveCount(1);
    // "Completed (Completed)" is gone: the status is not repeated.
    await expect(panel.getByText('Completed (Completed)')).toHaveCount(0);
    // A running job's switch still works.
    await expand(jobRow(panel, 'llama-finetune-'));
    await expect(
      jobRow(panel, 'llama-finetune-').getByRole('switch', {
        name: /Remote debug for/
      })
    ).not.toHaveAttribute('aria-disabled', 'true');
  });

  test("a host's logs open in a tab that follows new lines", async ({
    page
  }) => {
    // A job whose container prints while we watch: a debug copy of the failed
    // demo job starts at once, trains a minute, fails and is held.
    test.setTimeout(240000);
    const listed = await page.request.get(
      '/sm-debug/jobs?status=Failed&name_contains=mistral'
    );
    const failed = (await listed.json()).jobs[0].name as string;
    const job = `logs-follow-${Date.now() % 100000000}`;
    const created = await page.request.post(
      `/sm-debug/jobs/${failed}/debug-copy`,
      { data: { hold_seconds: 600, name: job } }
    );
    expect(created.status()).toBe(201);

    const panel = await openPanel(page);
    await panel
      .getByRole('searchbox', { name: 'Filter jobs by name' })
      .fill(job);
    const row = jobRow(panel, job);
    await expand(row);
    await row.getByRole('button', { name: `Logs of algo-1 of ${job}` }).click();
    const tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: `Logs · algo-1 · ${job}`
    });
    await expect(tab).toBeVisible();
    const log = page.getByRole('log', { name: `Log of algo-1 of ${job}` });
    const status = page.locator('.jp-SMDebug-logStatus');
    // The container starts, then its training command fails: each line shows
    // up in the open tab as the host prints it.
    await expect(log).toContainText('training on algo-1', { timeout: 90000 });
    await expect(status).toContainText('following');
    const before = await log.locator('.jp-SMDebug-logLine').count();
    await expect(log).toContainText('SM_DEBUG_HOLD host=algo-1', {
      timeout: 150000
    });
    expect(await log.locator('.jp-SMDebug-logLine').count()).toBeGreaterThan(
      before
    );
    await expect(log).toContainText('Traceback (most recent call last)');

    // Search keeps the matching lines and marks the match.
    const search = page.getByRole('searchbox', { name: 'Search the log' });
    await search.fill('reporting training');
    await expect(log.locator('.jp-SMDebug-logLine')).toHaveCount(1);
    await expect(log.locator('mark')).toHaveText('Reporting training');
    await expect(status).toContainText(/1 of \d+ lines match/);
    await search.fill('');

    // The SSM agent's stream is one click away (empty until an SSM session).
    const streams = page.getByRole('group', { name: 'Log stream' });
    await streams.getByRole('button', { name: 'SSM agent' }).click();
    await expect(
      streams.getByRole('button', { name: 'SSM agent' })
    ).toHaveAttribute('aria-pressed', 'true');
    await expect(log).not.toContainText('training on algo-1');
    await streams.getByRole('button', { name: 'Training' }).click();
    await expect(log).toContainText('SM_DEBUG_HOLD host=algo-1', {
      timeout: 30000
    });

    // Clean up: the held copy goes.
    const stopped = await page.request.post(`/sm-debug/jobs/${job}/stop`);
    expect(stopped.status()).toBe(200);
  });

  test("a finished job's logs open too, read to the end", async ({ page }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'bert-base-sentiment-');
    await expand(row);
    const job = (await row.getAttribute('data-job'))!;
    await row.getByRole('button', { name: `Logs of algo-1 of ${job}` }).click();
    const log = page.getByRole('log', { name: `Log of algo-1 of ${job}` });
    await expect(log).toContainText('Reporting training SUCCESS', {
      timeout: 30000
    });
    await expect(page.locator('.jp-SMDebug-logStatus')).toContainText(
      'the job has finished'
    );
  });
});
