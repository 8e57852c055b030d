import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE_FAILED } from '../../../src/signin/second-factor.js';
import { ACR_MFA, ACR_PWD } from '../../../src/verify/acr.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';

/**
 * The second-step pages in real Chromium through the demo BFF: a password session steps up
 * (the BFF's "second step" link, acr_values) to enrollment, recovery codes and the code page.
 * Screenshots go to SCREENSHOT_DIR (default: the temp directory) to be looked at.
 */
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'custos-signin-screens');
const PASSWORD = 'correct horse battery';
let login: LoginFixture;
let browser: TestBrowser;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  login = await startLoginFixture();
  await login.createUser({ username: 'gwen', password: PASSWORD });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

function codeAt(secret: string, offsetSeconds = 0): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + offsetSeconds * 1000 });
}

async function shot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot({ fullPage: true, path: path.join(SCREENSHOTS, `${name}.png`) });
  expect(png.subarray(1, 4).toString()).toBe('PNG');
}

/** The label text of the focused element (its accessible name from a <label for>). */
function focusedLabel(page: Page): Promise<string | null> {
  return page.evaluate<string | null>('document.activeElement && document.activeElement.labels && document.activeElement.labels[0] ? document.activeElement.labels[0].textContent : null');
}

describe.skipIf(BROWSER_UNAVAILABLE)('second-step pages in Chromium', () => {
  it('steps a password session up: enrollment (QR code), recovery codes once, then the code page; the BFF shows acr and amr', async () => {
    const { page } = browser;
    await login.signIn(page, 'gwen', PASSWORD);
    expect(await page.textContent('#acr')).toContain(ACR_PWD);

    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#step-up')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Set up two-step sign-in');
    expect(await page.locator('.qr svg').count()).toBe(1);
    expect(await page.getAttribute('.qr', 'aria-label')).toContain('QR code');
    expect(await page.locator('input[name=password]').count()).toBe(0);
    await shot(page, 'enroll-otp');
    const secret = (await page.textContent('.secret'))!.replaceAll(' ', '');

    // A wrong first code: one generic error, announced, the code field focused.
    await page.fill('#code', '000000' === codeAt(secret, -30) ? '111111' : '000000');
    await page.click('button:has-text("Confirm")');
    await expect(page.locator('[role=alert]').textContent()).resolves.toBe(CODE_FAILED);
    expect(await focusedLabel(page)).toBe('Code from your authenticator app');
    await shot(page, 'enroll-otp-error');

    await page.fill('#code', codeAt(secret, -30));
    await page.click('button:has-text("Confirm")');
    await expect(page.locator('h1').textContent()).resolves.toBe('Save your recovery codes');
    expect(await page.locator('ol.codes li').count()).toBe(10);
    await shot(page, 'recovery-codes');
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("continue")')]);
    expect(await page.textContent('#acr')).toContain(ACR_MFA);
    expect(await page.textContent('#acr')).toContain('"pwd","otp","mfa"');

    // A new browser session asking for mfa: password, then only the code page.
    await browser.context.clearCookies();
    await page.goto(`${login.bff.url}/login?acr=${encodeURIComponent(ACR_MFA)}`);
    await page.fill('input[name=username]', 'gwen');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]:has-text("Sign in")');
    await expect(page.locator('h1').textContent()).resolves.toBe('Enter your code');
    expect(await focusedLabel(page)).toBe('Code from your authenticator app');
    expect(await page.getAttribute('#code', 'autocomplete')).toBe('one-time-code');
    expect(await page.locator('label[for=recovery]').count()).toBe(1);
    await shot(page, 'otp');
    await page.fill('#code', codeAt(secret));
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("Continue")')]);
    expect(await page.textContent('#acr')).toContain(ACR_MFA);
  });
});
