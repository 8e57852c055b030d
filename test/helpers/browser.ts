/**
 * Headless Chromium for page tests (Debian's `chromium` package, driven by playwright-core).
 * Reusable: `const browser = await launchBrowser({ trust: app.custos.tls.certPem })`, then
 * `browser.page` (a fresh profile per launch), `browser.close()`.
 *
 * TLS trust: the dev server certificate is trusted by pinning its public key with Chromium's
 * `--ignore-certificate-errors-spki-list` (honoured only with a dedicated `--user-data-dir`, which
 * every launch gets): only that one key is accepted, unlike playwright's blanket
 * `ignoreHTTPSErrors`. Adding the dev CA to Chromium's NSS store would need certutil and would
 * change the user's home directory, which tests must not do.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { browserUnavailable, CHROMIUM } from './chromium.js';

export { browserUnavailable, CHROMIUM } from './chromium.js';

/** Why this machine cannot run page tests, undefined when it can (decided once per test file). */
export const BROWSER_UNAVAILABLE = browserUnavailable(CHROMIUM, process.env);

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** base64 SHA-256 of a certificate's SubjectPublicKeyInfo (the format Chromium's SPKI list takes). */
export function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Launches Chromium with a fresh profile, trusting the server certificate(s) in `trust`. */
export async function launchBrowser(options: { trust: string | string[] }): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium)`);
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'custos-chromium-'));
  const pins = (Array.isArray(options.trust) ? options.trust : [options.trust]).map(spkiHash).join(',');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${pins}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
