import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import { expand, jobRow, openPanel, testInfoPath } from './helpers';

/**
 * What a new user met on the demo (issue 21, "Also met by a new user").
 */

/**
 * The contrast ratio (WCAG) of an element's text on what is behind it: its
 * colour blended over the first opaque background of it or its ancestors.
 */
async function contrastOf(locator: Locator): Promise<number> {
  return locator.evaluate(node => {
    const parse = (color: string): number[] => {
      const m = color.match(/rgba?\(([^)]+)\)/);
      const parts = (m ? m[1] : '0,0,0,0')
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top: number[], below: number[]): number[] => {
      const a = top[3];
      return [0, 1, 2]
        .map(i => top[i] * a + below[i] * (1 - a))
        .concat([1]);
    };
    // The background: blend the element's and its ancestors' from the root down.
    const layers: number[][] = [];
    for (let el: Element | null = node; el; el = el.parentElement) {
      const bg = parse(getComputedStyle(el).backgroundColor);
      if (bg[3] > 0) {
        layers.push(bg);
        if (bg[3] === 1) {
          break;
        }
      }
    }
    let background = [255, 255, 255, 1];
    for (const layer of layers.reverse()) {
      background = over(layer, background);
    }
    const text = over(parse(getComputedStyle(node).color), background);
    const luminance = (c: number[]) => {
      const [r, g, b] = c.slice(0, 3).map(v => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [hi, lo] = [luminance(text), luminance(background)].sort(
      (a, b) => b - a
    );
    return (hi + 0.05) / (lo + 0.05);
  });
}

async function setTheme(
  page: IJupyterLabPageFixture,
  theme: 'JupyterLab Light' | 'JupyterLab Dark'
): Promise<void> {
  await page.evaluate(async name => {
    await (window as any).jupyterapp.commands.execute(
      'apputils:change-theme',
      { theme: name }
    );
  }, theme);
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    theme === 'JupyterLab Light' ? 'true' : 'false'
  );
}

test.describe('met by a new user', () => {
  test.afterEach(async ({ page }) => {
    await setTheme(page, 'JupyterLab Light');
  });

  test('the all-hosts views show disabled with the reason, and the outlier stack reads in light and dark', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'resnet50-ddp-4node-');
    await expand(row);
    const transport = row.getByRole('combobox', { name: /Transport for/ });
    await transport.selectOption('ssm');
    // Remote debug is off: over SSM the views cannot run, and say why.
    const stacks = row.getByRole('button', { name: /Python stacks of every/ });
    await expect(stacks).toBeVisible();
    await expect(stacks).toHaveAttribute('aria-disabled', 'true');
    const reason = row.locator('.jp-SMDebug-attachReason');
    await expect(reason).toBeVisible();
    expect(await stacks.getAttribute('title')).toBe(
      (await reason.textContent())?.trim()
    );
    await expect(
      row.getByRole('button', { name: /Run one command on every/ })
    ).toHaveAttribute('aria-disabled', 'true');
    await expect(
      row.getByRole('button', { name: /GPUs, load, memory and disk/ })
    ).toHaveAttribute('aria-disabled', 'true');

    // Over SSH they run.
    await transport.selectOption('ssh');
    await expect(stacks).toHaveAttribute('aria-disabled', 'false');
    await stacks.click();
    const tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: /Stacks · resnet50-ddp-4node-.* · SSH/
    });
    await expect(tab).toBeVisible();
    const outlier = page.locator(
      '.jp-SMDebug-stackGroup.jp-mod-outlier .jp-SMDebug-stackHeadline'
    );
    await expect(outlier.first()).toBeVisible({ timeout: 90000 });

    for (const theme of ['JupyterLab Light', 'JupyterLab Dark'] as const) {
      await setTheme(page, theme);
      for (const part of ['.jp-SMDebug-stackHeadline', '.jp-SMDebug-stackHosts', '.jp-SMDebug-outlierBadge']) {
        const ratio = await contrastOf(
          page.locator(`.jp-SMDebug-stackGroup.jp-mod-outlier ${part}`).first()
        );
        expect(ratio, `${part} in ${theme}`).toBeGreaterThanOrEqual(4.5);
      }
      await page
        .locator('.jp-SMDebug-hostView:not(.lm-mod-hidden)')
        .screenshot({
          path: testInfoPath(
            `stacks-${theme.endsWith('Dark') ? 'dark' : 'light'}.png`
          )
        });
    }
  });

  test('the Open port dialog refuses 99999 in the dialog itself', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'resnet50-ddp-4node-');
    await expand(row);
    await row
      .getByRole('combobox', { name: /Transport for/ })
      .selectOption('ssh');
    await row
      .getByRole('button', { name: /Open a port of algo-1 of .* over SSH/ })
      .click();
    const dialog = page.locator('.jp-Dialog');
    const input = dialog.locator('.jp-SMDebug-portInput');
    const open = dialog.getByRole('button', { name: /Open the port/ });
    await expect(input).toHaveValue('6006');
    await expect(open).toBeEnabled();
    await input.fill('99999');
    await expect(dialog.locator('.jp-SMDebug-portHelp')).toContainText(
      '1 to 65535'
    );
    await expect(open).toBeDisabled();
    await input.fill('6007');
    await expect(open).toBeEnabled();
    await dialog.getByRole('button', { name: /Cancel/ }).click();
    await expect(dialog).toHaveCount(0);
  });

  test('a stopped job says when it ended, not when it started', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const row = jobRow(panel, 'whisper-asr-finetune-');
    await expect(row.locator('.jp-SMDebug-when')).toContainText(/^ended /, {
      timeout: 30000
    });
    await expect(row.locator('.jp-SMDebug-elapsed')).toContainText('billed');
  });
});
