import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

export const PANEL_ID = 'jp-SMDebug-panel';

/**
 * Open the SageMaker Debug sidebar and wait for the seeded jobs.
 */
export async function openPanel(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  await page.sidebar.openTab(PANEL_ID);
  const panel = page.locator(`#${PANEL_ID}`);
  await expect(panel).toBeVisible();
  await expect(panel.locator('.jp-SMDebug-job').first()).toBeVisible({
    timeout: 30000
  });
  return panel;
}

/**
 * The row of the first job whose name starts with `prefix`.
 */
export function jobRow(panel: Locator, prefix: string): Locator {
  return panel.locator(`.jp-SMDebug-job[data-job^="${prefix}"]`).first();
}

export async function expand(row: Locator): Promise<void> {
  const header = row.locator('.jp-SMDebug-jobHeader');
  if ((await header.getAttribute('aria-expanded')) !== 'true') {
    await header.click();
  }
  await expect(row.locator('.jp-SMDebug-detail')).toBeVisible({
    timeout: 30000
  });
}

/**
 * The tab of the terminal attached to `host` of the job starting with `prefix`.
 */
export function terminalTab(
  page: IJupyterLabPageFixture,
  host: string,
  prefix: string
): Locator {
  return page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
    hasText: new RegExp(`${host} · ${prefix}`)
  });
}

/**
 * Type a line into the current terminal.
 */
export async function typeInTerminal(
  page: IJupyterLabPageFixture,
  line: string
): Promise<void> {
  const terminal = page
    .locator('.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-Terminal')
    .last();
  await terminal.click();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/**
 * The text of the current terminal, read from xterm's buffer (it draws on a
 * canvas, so the DOM has no text).
 */
export async function terminalText(
  page: IJupyterLabPageFixture
): Promise<string> {
  return page.evaluate(() => {
    const app = (window as any).jupyterapp;
    const widget = app.shell.currentWidget;
    const term = widget?.content?._term;
    if (!term) {
      return '';
    }
    const buffer = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) {
      lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    }
    return lines.join('\n');
  });
}

/**
 * A shell prompt at the end of the terminal's text.
 */
export const PROMPT = /[#$] ?$/m;

/**
 * A screenshot of the sidebar as it is (JupyterLab's default width unless a
 * test changed it) with the top bar: what the panel screenshots in docs/ show.
 */
export async function sidebarScreenshot(
  page: IJupyterLabPageFixture,
  name: string
): Promise<void> {
  const height = page.viewportSize()?.height ?? 768;
  const box = await page.locator(`#${PANEL_ID}`).boundingBox();
  const width = Math.ceil((box?.x ?? 0) + (box?.width ?? 360)) + 2;
  await page.screenshot({
    path: testInfoPath(name),
    clip: { x: 0, y: 0, width, height }
  });
}

/**
 * Where a screenshot goes: the test's output folder (a test artifact).
 */
export function testInfoPath(name: string): string {
  return test.info().outputPath(name);
}

/**
 * Click an Attach button and time, inside the page, how long it takes until
 * the new terminal tab for `label` (e.g. "algo-1 · llama-finetune-") shows a
 * shell prompt: performance.now() around the click and the first prompt in
 * xterm's buffer, polled every 5 ms.
 *
 * @returns milliseconds from the click to the prompt
 */
export async function attachAndTimePrompt(
  page: IJupyterLabPageFixture,
  button: Locator,
  label: string,
  timeout = 30000
): Promise<number> {
  await expect(button).toBeEnabled();
  const element = await button.elementHandle();
  return page.evaluate(
    ({ element, label, timeout, prompt }) =>
      new Promise<number>((resolve, reject) => {
        const app = (window as any).jupyterapp;
        const promptRe = new RegExp(prompt, 'm');
        const start = performance.now();
        (element as HTMLElement).click();
        const check = () => {
          const widget = app.shell.currentWidget;
          const term = widget?.content?._term;
          if (term && String(widget.title.label).startsWith(label)) {
            const buffer = term.buffer.active;
            const lines: string[] = [];
            for (let i = 0; i < buffer.length; i++) {
              lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
            }
            if (promptRe.test(lines.join('\n').trimEnd())) {
              resolve(performance.now() - start);
              return;
            }
          }
          if (performance.now() - start > timeout) {
            reject(new Error(`No prompt in a terminal "${label}…"`));
          } else {
            setTimeout(check, 5);
          }
        };
        check();
      }),
    { element, label, timeout, prompt: PROMPT.source }
  );
}

/**
 * Keep a measurement with the test's results (and print it).
 */
export function report(name: string, value: number, unit = 'ms'): void {
  const description = `${Math.round(value)} ${unit}`;
  test.info().annotations.push({ type: name, description });
  console.log(`${name}: ${description}`);
}
