import { expect, test } from '@jupyterlab/galata';

const PANEL_ID = 'jp-SMDebug-panel';

test.describe('SageMaker Debug sidebar', () => {
  test('JupyterLab loads with the SageMaker Debug tab in the left sidebar', async ({
    page
  }) => {
    const tab = page.locator(`.jp-SideBar [data-id="${PANEL_ID}"]`);
    await expect(tab).toBeVisible();
    await expect(tab).toHaveAttribute('title', 'SageMaker Debug');
  });

  test('opening the tab shows the panel', async ({ page }) => {
    await page.sidebar.openTab(PANEL_ID);
    expect(await page.sidebar.isTabOpen(PANEL_ID)).toBe(true);
    const panel = page.locator(`#${PANEL_ID}`);
    await expect(panel).toBeVisible();
    await expect(
      panel.getByRole('heading', { name: 'SageMaker Debug' })
    ).toBeVisible();
  });
});
