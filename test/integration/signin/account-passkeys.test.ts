import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { request } from 'undici';
import type { CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_PASSKEYS_PATH } from '../../../src/signin/account.routes.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { addPasskeyAuthenticator, webAuthnSession } from '../../helpers/virtual-authenticator.js';
import { withoutPasskeyAutofill } from '../../helpers/passkey-autofill.js';

/**
 * The signed-in user's passkey page (/account/passkeys) in real Chromium with a virtual
 * authenticator: add, confirm (step-up), rename, remove; the last factor is kept; CSRF and a
 * stale session are refused. Screenshots go to SCREENSHOT_DIR (default: the temp directory).
 */
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'custos-signin-screens');
const PASSWORD = 'correct horse battery';
let login: LoginFixture;
let browser: TestBrowser;
let cdp: CDPSession;
let userId: string;

const addAuthenticator = () => addPasskeyAuthenticator(cdp);

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  login = await startLoginFixture();
  userId = await login.createUser({ username: 'ana', password: PASSWORD });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
  // The password form and the passkey button are what is tested here (autofill: passkey-autofill.test.ts).
  await withoutPasskeyAutofill(browser.context);
  cdp = await webAuthnSession(browser.context, browser.page);
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot({ fullPage: true, path: path.join(SCREENSHOTS, `${name}.png`) });
  expect(png.subarray(1, 4).toString()).toBe('PNG');
}

const events = async (change: string) =>
  (await login.app.custos.db.selectFrom('event_outbox').select('payload').execute())
    .map((row) => JSON.stringify(row.payload))
    .filter((event) => event.includes(userId) && event.includes('credential-change') && event.includes(`"${change}"`));
const audits = async (action: string) =>
  login.app.custos.db.selectFrom('audit_log').select(['actor', 'details']).where('target', '=', `user:${userId}`).where('action', '=', action).execute();
/** A POST from outside the page (undici) with the browser's cookies: what a forged or replayed form would be. */
async function post(target: string, body: Record<string, string>, type = 'application/x-www-form-urlencoded'): Promise<{ status: number; text: string }> {
  const cookies = await browser.context.cookies(login.app.issuer);
  const response = await request(target, {
    method: 'POST',
    headers: { cookie: cookies.map((cookie) => `${cookie.name}=${cookie.value}`).join('; '), 'content-type': type },
    body: type === 'application/json' ? JSON.stringify(body) : new URLSearchParams(body).toString(),
    dispatcher: login.app.agent(),
  });
  return { status: response.statusCode, text: await response.body.text() };
}
const names = (page: Page) => page.locator('li.passkey h3').allTextContents();

describe.skipIf(BROWSER_UNAVAILABLE)('the passkey self-service page in Chromium', () => {
  it('adds, confirms, renames and removes passkeys; keeps the last factor; refuses a foreign form and a stale session', async () => {
    const { page } = browser;
    const url = `${login.app.issuer}${ACCOUNT_PASSKEYS_PATH}`;

    // Not signed in: nothing to manage.
    const anonymous = await page.goto(url);
    expect(anonymous!.status()).toBe(401);
    await expect(page.locator('h1').textContent()).resolves.toBe('Sign in first');

    // A fresh password sign-in of a user without factors may add the first passkey.
    await login.signIn(page, 'ana', PASSWORD);
    const first = await page.goto(url);
    expect(first!.status()).toBe(200);
    expect(first!.headers()['content-security-policy']).toMatch(/script-src 'nonce-[A-Za-z0-9_-]{22}'/);
    expect(await page.locator('[onclick], [onsubmit], script:not([src]):not([type="application/json"])').count()).toBe(0);
    await expect(page.locator('h1').textContent()).resolves.toBe('Your passkeys');
    const laptop = await addAuthenticator();
    const add = page.locator('button:has-text("Add a passkey")');
    await add.waitFor({ state: 'visible' });
    await shot(page, 'account-passkeys-empty');
    await page.fill('#passkey-name', 'Laptop');
    await Promise.all([page.waitForURL(/done=added/), add.click()]);
    expect(await page.textContent('[role=status].notice')).toBe('Passkey added.');
    expect(await events('create')).toHaveLength(1);
    expect((await audits('user.passkey.enroll'))[0]).toMatchObject({ actor: `user:${userId}`, details: { name: 'Laptop', via: 'account' } });

    // Now the user has a passkey, the password session is not enough: confirm with the passkey.
    await expect(page.locator('h1').textContent()).resolves.toBe('Confirm it is you');
    const confirm = page.locator('button:has-text("Confirm with a passkey")');
    await confirm.waitFor({ state: 'visible' });
    await shot(page, 'account-confirm');
    await Promise.all([page.waitForURL(url), confirm.click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Your passkeys');
    expect(await names(page)).toEqual(['Laptop']);
    expect((await audits('account.confirm'))[0]).toMatchObject({ details: { factor: 'passkey' } });

    // The only factor: no remove button, and a forged removal is refused.
    expect(await page.locator('button:has-text("Remove")').count()).toBe(0);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const id = await page.locator('input[name=id]').first().inputValue();
    const refused = await post(`${url}/remove`, { csrf, id });
    expect(refused.status).toBe(409);
    expect(await login.app.custos.db.selectFrom('signin_passkey').select('id').where('user_id', '=', userId).execute()).toHaveLength(1);

    // CSRF: a form without this session's token, and a non-form body, change nothing.
    expect((await post(`${url}/rename`, { csrf: 'forged', id, name: 'Mine now' })).status).toBe(403);
    expect((await post(`${url}/rename`, { csrf, id, name: 'Mine now' }, 'application/json')).status).toBe(415);

    // Rename.
    await page.fill(`#name-${id}`, 'Work laptop');
    await Promise.all([page.waitForURL(/done=renamed/), page.click(`li.passkey:has(h3:text("Laptop")) button:has-text("Rename")`)]);
    expect(await names(page)).toEqual(['Work laptop']);
    expect(await audits('user.passkey.rename')).toHaveLength(1);

    // A second passkey on a security key (another authenticator), then the first one removed.
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: laptop });
    await addAuthenticator();
    await page.fill('#passkey-name', 'Security key');
    await Promise.all([page.waitForURL(/done=added/), add.click()]);
    expect(await names(page)).toEqual(['Work laptop', 'Security key']);
    await shot(page, 'account-passkeys-two');
    await Promise.all([page.waitForURL(/done=removed/), page.click(`li.passkey:has(h3:text("Work laptop")) button:has-text("Remove")`)]);
    expect(await names(page)).toEqual(['Security key']);
    expect(await events('delete')).toHaveLength(1);
    expect(await audits('user.passkey.remove')).toHaveLength(1);

    // A sign-in older than five minutes: changes are refused until the user confirms again.
    const db = login.app.custos.db;
    await db
      .updateTable('oidc_model')
      .set({ payload: sql`jsonb_set(payload::jsonb, '{loginTs}', to_jsonb(extract(epoch from now())::int - 600))` })
      .where('model', '=', 'Session')
      .where(sql<string>`payload->>'accountId'`, '=', userId)
      .execute();
    const keyId = await page.locator('input[name=id]').first().inputValue();
    const stale = await post(`${url}/rename`, { csrf, id: keyId, name: 'Stale' });
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('Confirm it is you');
    await page.goto(url);
    await confirm.waitFor({ state: 'visible' });
    await confirm.click();
    await page.locator('h1:text("Your passkeys")').waitFor();
    expect(await names(page)).toEqual(['Security key']);
  });
});
