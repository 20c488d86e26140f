/**
 * Playwright configuration: galata's defaults, the system chromium (Playwright
 * cannot download its own browser here) and the project's demo as the app.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

module.exports = {
  ...baseConfig,
  // One JupyterLab, one stand-in: tests share state, run them one at a time.
  workers: 1,
  reporter: [[process.env.CI ? 'line' : 'list'], ['html', { open: 'never' }]],
  retries: process.env.CI ? 1 : 0,
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--headless=new',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jlpm start',
    url: 'http://localhost:8888/lab',
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    // Let the demo stop JupyterLab and the stand-in's hosts (sshd) itself;
    // the default SIGKILL would leave them running.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20 * 1000 }
  }
};
