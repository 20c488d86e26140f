import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import {
  expand,
  jobRow,
  openPanel,
  PANEL_ID,
  PROMPT,
  report,
  terminalTab,
  terminalText,
  testInfoPath,
  typeInTerminal
} from './helpers';

/**
 * The held demo job: running, its train.py in /opt/ml/code (the demo's
 * missing-validation program), reachable over SSM and SSH.
 */
const JOB = 'gpt2-pretrain-ddp-';

/**
 * The main-area tab of a host's files.
 */
function filesTab(page: IJupyterLabPageFixture, host: string): Locator {
  return page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
    hasText: new RegExp(`^${host} · ${JOB}`)
  });
}

/**
 * The file browser of the files tab on screen.
 */
function browser(page: IJupyterLabPageFixture): Locator {
  return page.locator('.jp-SMDebug-files:not(.lm-mod-hidden)');
}

function item(page: IJupyterLabPageFixture, name: string): Locator {
  const exact = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return browser(page)
    .locator('.jp-DirListing-item')
    .filter({
      has: page.locator('.jp-DirListing-itemText', { hasText: exact })
    });
}

async function openFiles(page: IJupyterLabPageFixture): Promise<void> {
  const panel = await openPanel(page);
  await page.sidebar.setWidth(360);
  const row = jobRow(panel, JOB);
  await expand(row);
  await row
    .getByRole('combobox', { name: /Transport for/ })
    .selectOption('ssm');
  const start = Date.now();
  await row
    .getByRole('button', {
      name: new RegExp(`Files of algo-1 of ${JOB}.* over SSM`)
    })
    .click();
  await expect(filesTab(page, 'algo-1')).toBeVisible();
  // It starts in /opt/ml.
  await expect(browser(page).locator('.jp-BreadCrumbs')).toContainText('ml', {
    timeout: 30000
  });
  await expect(item(page, 'code')).toBeVisible({ timeout: 30000 });
  // From the click to /opt/ml listed (with the test's own polling).
  report('files-click-to-listing SSM', Date.now() - start);
}

test.describe('Files of a host', () => {
  // The terminal is created by the server, not by the page.
  test.use({ terminals: null } as any);

  test('edit train.py in algo-1, save, and see the change in a shell there', async ({
    page
  }) => {
    const marker = `edited-in-jupyterlab-${Date.now()}`;
    await openFiles(page);

    await item(page, 'code').dblclick();
    await expect(item(page, 'train.py')).toBeVisible({ timeout: 30000 });
    const opening = Date.now();
    await item(page, 'train.py').dblclick();

    // JupyterLab's own editor, its tab marked with the host.
    const docTab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: 'train.py'
    });
    await expect(docTab).toHaveAttribute('data-sm-debug-host', 'algo-1', {
      timeout: 30000
    });
    await expect(docTab).toHaveAttribute(
      'title',
      new RegExp(`^algo-1 · ${JOB}.*: /opt/ml/code/train.py\nName: train.py`)
    );
    const editor = page.locator(
      '.jp-FileEditor:not(.lm-mod-hidden) .cm-content'
    );
    await expect(editor).toContainText('STEP_SECONDS', { timeout: 30000 });
    report('files-open-train.py SSM', Date.now() - opening);

    // A first line, saved with the keyboard.
    await editor.click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.type(`# ${marker}`);
    await page.keyboard.press('Enter');
    await expect(docTab).toHaveClass(/jp-mod-dirty/);
    const saving = Date.now();
    await page.keyboard.press('Control+s');
    await expect(docTab).not.toHaveClass(/jp-mod-dirty/, { timeout: 30000 });
    report('files-save-train.py SSM', Date.now() - saving);

    // The files tab and the editor side by side, for the README.
    await page.setViewportSize({ width: 1400, height: 820 });
    await page.evaluate(() => {
      const app = (window as any).jupyterapp;
      const widgets = Array.from(app.shell.widgets('main')) as any[];
      const files = widgets.find(w => w.hasClass('jp-SMDebug-files'));
      const doc = widgets.find(w => w.title.label === 'train.py');
      app.shell.add(doc, 'main', { mode: 'split-right', ref: files.id });
    });
    await page.mouse.move(700, 500);
    await page.screenshot({ path: testInfoPath('files.png') });

    // A shell in algo-1 sees the saved file.
    await page.sidebar.openTab(PANEL_ID);
    const row = jobRow(page.locator(`#${PANEL_ID}`), JOB);
    await row
      .getByRole('button', {
        name: new RegExp(`Attach to algo-1 of ${JOB}.* over SSM`)
      })
      .click();
    await expect(terminalTab(page, 'algo-1', JOB)).toBeVisible({
      timeout: 30000
    });
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(PROMPT);
    // (The terminal may be narrow: a short answer, which the typed command
    // does not hold.)
    await typeInTerminal(
      page,
      `head -n 1 /opt/ml/code/train.py | grep -q '${marker}' && echo SAVED-$((6*7))`
    );
    await expect
      .poll(() => terminalText(page), { timeout: 30000 })
      .toMatch(/^SAVED-42\s*$/m);
    // The shell is left open: the last shell closing on a held host ends
    // its hold, and later specs use the held job.
  });

  test('upload, rename and delete a file in algo-1', async ({ page }) => {
    const name = `upload-${Date.now()}.txt`;
    const renamed = name.replace('upload-', 'renamed-');
    await openFiles(page);

    // The toolbar's Upload button (JupyterLab's uploader through the drive).
    const chooser = page.waitForEvent('filechooser');
    await browser(page)
      .locator('.jp-ToolbarButtonComponent[title="Upload Files"]')
      .click();
    await (
      await chooser
    ).setFiles({
        name,
        mimeType: 'text/plain',
        buffer: Buffer.from('uploaded from galata\n')
      });
    await expect(item(page, name)).toBeVisible({ timeout: 30000 });
    // Its bytes are in the container.
    const job = await browser(page).getAttribute('data-drive');
    const [, jobName] = (job ?? '').split('.');
    const answer = await page.request.get(
      `/sm-debug/jobs/${jobName}/hosts/algo-1/files/opt/ml/${name}?content=1&format=text`
    );
    expect(answer.ok()).toBe(true);
    expect((await answer.json()).content).toBe('uploaded from galata\n');

    // Rename from the context menu.
    await item(page, name).click({ button: 'right' });
    await page.getByRole('menuitem', { name: /^Rename/ }).click();
    const input = browser(page).locator('.jp-DirListing-editor');
    await input.fill(renamed);
    await input.press('Enter');
    await expect(item(page, renamed)).toBeVisible({ timeout: 30000 });
    await expect(item(page, name)).toHaveCount(0);

    // The path a shell in the container knows, from the context menu.
    await page
      .context()
      .grantPermissions(['clipboard-read', 'clipboard-write']);
    await item(page, renamed).click({ button: 'right' });
    await page
      .getByRole('menuitem', { name: 'Copy Path in the Container' })
      .click();
    await expect
      .poll(() => page.evaluate(() => navigator.clipboard.readText()))
      .toBe(`/opt/ml/${renamed}`);

    // Delete from the context menu, confirmed. (JupyterLab calls it "Move to
    // Trash" when its own server has a trash; a container has none: the
    // drive deletes, docs/files.md.)
    await item(page, renamed).click({ button: 'right' });
    await page
      .getByRole('menuitem', { name: /^(Delete|Move to Trash)/ })
      .click();
    await page
      .locator('.jp-Dialog')
      .getByRole('button', { name: /^(Delete|Move to Trash)$/ })
      .click();
    await expect(item(page, renamed)).toHaveCount(0, { timeout: 30000 });
  });

  test('HTML opens as text, a binary or too large file as a notice with Download', async ({
    page
  }) => {
    await openFiles(page);
    const drive = (await browser(page).getAttribute('data-drive')) ?? '';
    const job = drive.split('.')[1];
    // Files made in algo-1 with a command (the run API).
    const made = await page.request.post(`/sm-debug/jobs/${job}/run`, {
      data: {
        shell:
          'mkdir -p /tmp/galata-files && cd /tmp/galata-files && ' +
          `printf '<h1>from the container</h1><script>parent.document.title="ran"</script>' > page.html && ` +
          "printf 'PK\\003\\004\\000\\000binary' > model.bin && " +
          'head -c 17000000 /dev/zero | tr "\\0" x > big.log',
        hosts: ['algo-1'],
        transport: 'ssm'
      }
    });
    expect(made.ok()).toBe(true);
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const tab = Array.from(app.shell.widgets('main')).find((w: any) =>
        w.hasClass('jp-SMDebug-files')
      ) as any;
      await tab.browser.model.cd('/tmp/galata-files');
    });
    await expect(item(page, 'page.html')).toBeVisible({ timeout: 30000 });

    // HTML opens in the text editor, never in the HTML viewer.
    await item(page, 'page.html').dblclick();
    await expect(
      page.locator('.jp-FileEditor:not(.lm-mod-hidden) .cm-content')
    ).toContainText('from the container', { timeout: 30000 });
    // Asked for the HTML viewer by name, it is closed and the Editor shown.
    await page.evaluate(async path => {
      const app = (window as any).jupyterapp;
      await app.commands.execute('docmanager:open', {
        path,
        factory: 'HTML Viewer'
      });
    }, `${drive}:tmp/galata-files/page.html`);
    await expect(page.locator('.jp-HTMLViewer')).toHaveCount(0);
    await expect(page.locator('iframe')).toHaveCount(0);
    expect(await page.title()).not.toBe('ran');

    // Not text: a notice with Download instead of an editor.
    await filesTab(page, 'algo-1').click();
    await item(page, 'model.bin').dblclick();
    const notice = page.locator('.jp-SMDebug-refusedFile:not(.lm-mod-hidden)');
    await expect(notice).toContainText('/tmp/galata-files/model.bin', {
      timeout: 30000
    });
    await expect(notice).toContainText('not text');
    const download = page.waitForEvent('download');
    await notice.getByRole('button', { name: /^Download/ }).click();
    expect((await download).suggestedFilename()).toBe('model.bin');

    // Over the server's limit: the same, never loaded.
    await filesTab(page, 'algo-1').click();
    await item(page, 'big.log').dblclick();
    await expect(notice).toContainText('/tmp/galata-files/big.log', {
      timeout: 30000
    });
    await expect(notice).toContainText('too large');
  });

  test.describe('after a reload', () => {
    // The layout is the server's workspace, as a user's is.
    test.use({ mockState: false } as any);

    test('the files tab and its document come back', async ({ page }) => {
      await openFiles(page);
      await item(page, 'code').dblclick();
      await item(page, 'train.py').dblclick();
      const docTab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
        hasText: 'train.py'
      });
      await expect(docTab).toHaveAttribute('data-sm-debug-host', 'algo-1', {
        timeout: 30000
      });
      // Once JupyterLab has saved the layout with both tabs.
      await expect
        .poll(
          async () => {
            const answer = await page.request.get('/lab/api/workspaces/default');
            const text = JSON.stringify(await answer.json());
            return (
              text.includes('sm-debug-files:') && text.includes('train.py')
            );
          },
          { timeout: 30000 }
        )
        .toBe(true);

      // Not galata's reload, which waits for a Launcher.
      await page.reload({ waitForIsReady: false } as any);
      await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
      await page.evaluate(() => (window as any).jupyterapp.restored);
      await expect(filesTab(page, 'algo-1')).toHaveCount(1, {
        timeout: 30000
      });
      // The document is read from the host again, through its drive.
      await expect(docTab).toHaveAttribute('data-sm-debug-host', 'algo-1', {
        timeout: 30000
      });
      await docTab.click();
      await expect(
        page.locator('.jp-FileEditor:not(.lm-mod-hidden) .cm-content')
      ).toContainText('STEP_SECONDS', { timeout: 30000 });
      await expect(page.locator('.jp-Dialog')).toHaveCount(0);
    });
  });
});
