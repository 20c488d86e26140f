import { expect, test } from '@jupyterlab/galata';

import { expand, openPanel } from './helpers';

test.describe('Debug a copy', () => {
  test('a copy of the Failed job appears, selected, with remote debug on', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await page.sidebar.setWidth(360);
    // The seeded Failed job (a copy from an earlier try would be running).
    const failed = panel.locator(
      '.jp-SMDebug-job.jp-mod-failed[data-job^="mistral-7b-sft-"]'
    );
    await expect(failed).toHaveCount(1);
    const original = (await failed.getAttribute('data-job')) ?? '';
    const copies = panel.locator(
      '.jp-SMDebug-job[data-job^="mistral-7b-sft-"][data-job*="-debug-"]'
    );
    const before = await copies.count();
    await expand(failed);

    await failed
      .getByRole('button', { name: /^Debug a copy of mistral-7b-sft-/ })
      .click();

    // The hold window, from the settings (1800 s by default).
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toBeVisible();
    await expect(dialog.locator('.jp-Dialog-header')).toContainText(
      `Debug a copy of ${original}`
    );
    const hold = dialog.getByRole('spinbutton', {
      name: /Hold a failed container for/
    });
    await expect(hold).toHaveValue('1800');
    await expect(dialog.locator('.jp-SMDebug-holdHelp')).toHaveText(
      '30 minutes'
    );
    await dialog.getByRole('button', { name: /Start a debug copy of/ }).click();
    await expect(dialog).toHaveCount(0);

    // The new job: listed first, expanded, selected, remote debug on.
    await expect(copies).toHaveCount(before + 1, { timeout: 30000 });
    const copy = copies.first();
    await expect(copy).toHaveClass(/jp-mod-selected/);
    await expect(panel.locator('.jp-SMDebug-job.jp-mod-selected')).toHaveCount(
      1
    );
    await expect(
      copy.locator('.jp-SMDebug-badge.jp-mod-remoteDebug')
    ).toBeVisible();
    await expect(copy.locator('.jp-SMDebug-jobHeader')).toHaveAttribute(
      'aria-expanded',
      'true'
    );
    await expect(copy.locator('.jp-SMDebug-jobHeader')).toBeFocused();
    await expect(
      copy.getByRole('switch', { name: /Remote debug for/ })
    ).toHaveAttribute('aria-checked', 'true', { timeout: 30000 });

    // The original says where its copy went.
    const copyName = (await copy.getAttribute('data-job')) ?? '';
    await expect(failed.locator('.jp-SMDebug-debugCopyDone')).toContainText(
      copyName
    );
  });

  test('the command is in the palette', async ({ page }) => {
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'apputils:activate-command-palette'
      );
    });
    await page.keyboard.type('Debug a copy');
    await expect(
      page.locator('.lm-CommandPalette-item', {
        hasText: 'Debug a Copy of a SageMaker Training Job…'
      })
    ).toBeVisible();
    await page.keyboard.press('Escape');
  });
});
