/**
 * Headless Chromium for the browser tests (playwright-core, Debian's /usr/bin/chromium), with
 * WebGPU on (--enable-unsafe-webgpu: a SwiftShader adapter here), and a helper that waits for a
 * page condition and names the page's errors when it does not come.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** `webgpu: false` leaves WebGPU off, as Chromium on Linux ships it. */
export async function launchChromium({ webgpu = true } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install it (apt-get install chromium; .ci/run does)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Opens `url` and waits for `ready` (a page function); a timeout reports the page's errors. */
export async function openAndWait(page: Page, url: string, ready: () => boolean, timeout: number): Promise<void> {
  const errors: string[] = [];
  const onError = (e: Error): void => void errors.push(e.message);
  const onConsole = (m: ConsoleMessage): void => void (m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', onError).on('console', onConsole);
  try {
    await page.goto(url);
    await page.waitForFunction(ready, null, { timeout }).catch((e: Error) => {
      throw new Error(`${url}: ${e.message}; page errors: ${errors.join('; ') || 'none'}`);
    });
  } finally {
    page.off('pageerror', onError).off('console', onConsole);
  }
}
