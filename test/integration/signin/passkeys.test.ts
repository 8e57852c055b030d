import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSKEY_FAILED } from '../../../src/signin/second-factor.js';
import { ACR_PHR, ACR_PWD } from '../../../src/verify/acr.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { adminClient } from '../../helpers/admin.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { addPasskeyAuthenticator, webAuthnSession } from '../../helpers/virtual-authenticator.js';
import { withoutPasskeyAutofill } from '../../helpers/passkey-autofill.js';

/**
 * Passkeys in real Chromium with a virtual authenticator (DevTools protocol WebAuthn domain:
 * CTAP2, internal transport, resident keys, user verification), through the demo BFF: created on
 * a step-up to phishing-resistant, then used alone (discoverable) and as step-up; once removed it
 * no longer signs in. Screenshots go to SCREENSHOT_DIR (default: the temp directory).
 */
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'custos-signin-screens');
const PASSWORD = 'correct horse battery';
let login: LoginFixture;
let browser: TestBrowser;
let cdp: CDPSession;
let userId: string;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  login = await startLoginFixture();
  userId = await login.createUser({ username: 'pia', password: PASSWORD });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
  // The password form and the passkey button are what is tested here (autofill: passkey-autofill.test.ts).
  await withoutPasskeyAutofill(browser.context);
  cdp = await webAuthnSession(browser.context, browser.page);
  await addPasskeyAuthenticator(cdp);
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot({ fullPage: true, path: path.join(SCREENSHOTS, `${name}.png`) });
  expect(png.subarray(1, 4).toString()).toBe('PNG');
}

const acrLine = (page: Page) => page.textContent('#acr');

describe.skipIf(BROWSER_UNAVAILABLE)('passkeys in Chromium with a virtual authenticator', () => {
  it('creates a passkey on a step-up to phishing-resistant sign-in, signs in with it alone, as step-up and as second factor; removed by an administrator, it no longer works', async () => {
    const { page } = browser;

    // A password session asks for phr: the user has no passkey, so it is created (no password asked again).
    await login.signIn(page, 'pia', PASSWORD);
    expect(await acrLine(page)).toContain(ACR_PWD);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#step-up-phr')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Create a passkey');
    expect(await page.locator('input[name=password]').count()).toBe(0);
    await page.locator('button:has-text("Create a passkey")').waitFor({ state: 'visible' });
    await shot(page, 'passkey-create');
    await page.fill('#passkey-name', 'Work laptop');
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("Create a passkey")')]);
    expect(await acrLine(page)).toContain(ACR_PHR);
    expect(await acrLine(page)).toContain('"pwd","hwk","user","mfa"');

    const db = login.app.custos.db;
    const stored = await db.selectFrom('signin_passkey').select(['name', 'backed_up', 'device_type', 'counter', 'transports']).where('user_id', '=', userId).execute();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ name: 'Work laptop', backed_up: false });
    const events = (await db.selectFrom('event_outbox').select('payload').execute()).map((row) => JSON.stringify(row.payload));
    expect(events.filter((event) => event.includes('fido2-platform') && event.includes(userId))).toHaveLength(1);

    // A passkey alone, from the password page (discoverable credential): phr, no password.
    await browser.context.clearCookies();
    const response = await page.goto(`${login.bff.url}/login`);
    expect(response!.headers()['content-security-policy']).toMatch(/script-src 'nonce-[A-Za-z0-9_-]{22}'/);
    expect(await page.locator('[onclick], [onsubmit], script:not([src]):not([type="application/json"])').count()).toBe(0);
    const passkeyButton = page.locator('button:has-text("Sign in with a passkey")');
    await passkeyButton.waitFor({ state: 'visible' });
    await shot(page, 'login-with-passkey');
    await Promise.all([page.waitForURL(`${login.bff.url}/`), passkeyButton.click()]);
    expect(await acrLine(page)).toContain(ACR_PHR);
    expect(await acrLine(page)).toContain('"hwk","user","mfa"');

    // Step-up: a password session asked for phr uses the passkey it has.
    await browser.context.clearCookies();
    await login.signIn(page, 'pia', PASSWORD);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#step-up-phr')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Use your passkey');
    await page.locator('button:has-text("Use a passkey")').waitFor({ state: 'visible' });
    await shot(page, 'passkey-step-up');
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("Use a passkey")')]);
    expect(await acrLine(page)).toContain(ACR_PHR);

    // As the second factor of an mfa request (the user has no authenticator app): the passkey, not an app setup.
    await browser.context.clearCookies();
    await login.signIn(page, 'pia', PASSWORD);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#step-up')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Use your passkey');
    expect(await page.textContent('p.client')).toContain('asks for a second step');
    await page.locator('button:has-text("Use a passkey")').waitFor({ state: 'visible' });
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("Use a passkey")')]);
    expect(await acrLine(page)).toContain(ACR_PHR);
    expect(await acrLine(page)).toContain('"pwd","hwk","user","mfa"');

    // An administrator lists and removes it (admin API): audited, a credential-change delete event; it signs in no more.
    const admin = await adminClient(login.app);
    const listed = await admin.call('GET', `/admin/users/${userId}/authenticators`);
    expect(listed.status).toBe(200);
    expect(listed.body.authenticators).toHaveLength(1);
    const [passkey] = listed.body.authenticators;
    expect(passkey).toMatchObject({ type: 'passkey', name: 'Work laptop', backed_up: false, attachment: 'platform' });
    expect(JSON.stringify(listed.body)).not.toMatch(/public_key|credential_id/);
    const removed = await admin.call('DELETE', `/admin/users/${userId}/authenticators/${passkey.id}`);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ removed: [passkey.id] });
    expect((await admin.call('DELETE', `/admin/users/${userId}/authenticators/${passkey.id}`)).status).toBe(404);
    const deletes = (await db.selectFrom('event_outbox').select('payload').execute()).map((row) => JSON.stringify(row.payload)).filter((event) => event.includes(userId) && event.includes('"delete"'));
    expect(deletes).toHaveLength(1);
    expect(deletes[0]).toContain('fido2-platform');
    const audit = await db.selectFrom('audit_log').select('action').where('target', '=', `user:${userId}`).where('action', '=', 'user.authenticator.remove').execute();
    expect(audit).toHaveLength(1);
    await browser.context.clearCookies();
    await page.goto(`${login.bff.url}/login`);
    await passkeyButton.waitFor({ state: 'visible' });
    await passkeyButton.click();
    await expect(page.locator('[role=alert]').textContent()).resolves.toBe(PASSKEY_FAILED);
    expect(page.url()).toContain('/interaction/');
    await shot(page, 'passkey-removed');
  });
});
