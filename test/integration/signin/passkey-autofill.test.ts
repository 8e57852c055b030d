import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CDPSession, Page, Request } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSKEY_FAILED } from '../../../src/signin/second-factor.js';
import { ACR_PHR, ACR_PWD } from '../../../src/verify/acr.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { addPasskeyAuthenticator, webAuthnSession } from '../../helpers/virtual-authenticator.js';
import { recordCredentialRequests, withoutWebAuthn } from '../../helpers/passkey-autofill.js';

/**
 * Passkey autofill on the sign-in page (WebAuthn conditional mediation) in real Chromium with a
 * virtual authenticator: the username field says `autocomplete="username webauthn"`, the served
 * script starts a conditional request on page load (no click), and the assertion it returns is
 * posted to the same passkey endpoint as the button's, once, for that interaction only.
 *
 * Not verified here: the autofill dropdown itself. Chromium's virtual authenticator answers a
 * conditional request on its own as soon as it holds a matching passkey, so the test shows that
 * the page asks for conditional mediation and that its answer signs in, not a person picking the
 * passkey from the list under the username field.
 */
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'custos-signin-screens');
const PASSWORD = 'correct horse battery';
const PASSKEY_POST = /\/interaction\/([A-Za-z0-9_-]+)\/passkey$/;
let login: LoginFixture;
let browser: TestBrowser;
let cdp: CDPSession;
let userId: string;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  login = await startLoginFixture();
  userId = await login.createUser({ username: 'ari', password: PASSWORD });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
  cdp = await webAuthnSession(browser.context, browser.page);
  await addPasskeyAuthenticator(cdp);
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

const acrLine = (page: Page) => page.textContent('#acr');

/** A form POST to Custos with the browser's cookies (as the page's form would send it). */
async function postAsBrowser(target: string, form: URLSearchParams): Promise<{ status: number; text: string }> {
  const cookies = await browser.context.cookies(`${login.app.issuer}${target}`);
  const response = await request(`${login.app.issuer}${target}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies.map((cookie) => `${cookie.name}=${cookie.value}`).join('; ') },
    body: form.toString(),
    dispatcher: login.app.agent(),
  });
  return { status: response.statusCode, text: await response.body.text() };
}

describe.skipIf(BROWSER_UNAVAILABLE)('passkey autofill (conditional mediation) in Chromium', () => {
  it('the sign-in page asks for conditional mediation on load; the passkey it returns signs in once, for that interaction only; without WebAuthn the password still works', async () => {
    const { page } = browser;
    const mediations = await recordCredentialRequests(page);
    const passkeyPosts: Request[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && PASSKEY_POST.test(new URL(request.url()).pathname)) passkeyPosts.push(request);
    });

    // No passkey yet: the conditional request waits (as for a user who picks nothing); the page is the usual one.
    const response = await page.goto(`${login.bff.url}/login`);
    await page.waitForURL(/\/interaction\//);
    expect(response!.headers()['content-security-policy']).toMatch(/script-src 'nonce-[A-Za-z0-9_-]{22}'/);
    expect(await page.getAttribute('#username', 'autocomplete')).toBe('username webauthn');
    expect(await page.locator('form[data-passkey][data-autofill]').count()).toBe(1);
    expect(await page.locator('[onclick], [onsubmit], [onload], script:not([src]):not([type="application/json"])').count()).toBe(0);
    await page.locator('button[data-passkey-start]').waitFor({ state: 'visible' });
    await expect.poll(() => mediations).toEqual(['conditional']);
    await page.screenshot({ fullPage: true, path: path.join(SCREENSHOTS, 'login-passkey-autofill.png') });

    // The password form works while that request is pending; then a passkey is created (step-up to phr).
    await page.fill('input[name=username]', 'ari');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button[type=submit]:has-text("Sign in")')]);
    expect(await acrLine(page)).toContain(ACR_PWD);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#step-up-phr')]);
    await page.locator('button:has-text("Create a passkey")').waitFor({ state: 'visible' });
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.click('button:has-text("Create a passkey")')]);
    expect(await acrLine(page)).toContain(ACR_PHR);
    expect(passkeyPosts).toHaveLength(0);

    // A new sign-in: the conditional request started on load gets the passkey (no button clicked),
    // the page posts it to the passkey endpoint, and the user is signed in, phishing-resistant.
    await browser.context.clearCookies();
    mediations.length = 0;
    await Promise.all([page.waitForURL(`${login.bff.url}/`), page.goto(`${login.bff.url}/login`)]);
    expect(await acrLine(page)).toContain(ACR_PHR);
    expect(await acrLine(page)).toContain('"hwk","user","mfa"');
    expect(mediations).toEqual(['conditional']);
    expect(passkeyPosts).toHaveLength(1);
    const posted = passkeyPosts[0]!;
    const usedInteraction = PASSKEY_POST.exec(new URL(posted.url()).pathname)![1]!;
    const form = new URLSearchParams(posted.postData() ?? '');
    expect(JSON.parse(form.get('response')!)).toMatchObject({ type: 'public-key', response: { userHandle: expect.any(String) } });
    const signins = await login.app.custos.db
      .selectFrom('audit_log')
      .select('details')
      .where('actor', '=', `user:${userId}`)
      .where('action', '=', 'login.success')
      .orderBy('id')
      .execute();
    // The password sign-in, the passkey creation (step-up) and the autofilled passkey alone.
    expect(signins.map((row) => (row.details as { amr?: string[] }).amr ?? null)).toEqual([null, ['pwd', 'hwk', 'user', 'mfa'], ['hwk', 'user', 'mfa']]);

    // The same assertion again, to its own (finished) interaction: refused.
    const replayed = await postAsBrowser(`/interaction/${usedInteraction}/passkey`, form);
    expect(replayed.status).toBe(400);
    expect(replayed.text).toContain('This sign-in request has expired or is not valid.');

    // A browser without WebAuthn: no passkey button, no credential request; the assertion replayed
    // into this other interaction is refused with the one message; the password signs in.
    const plain = await browser.context.newPage();
    await withoutWebAuthn(plain);
    const plainMediations = await recordCredentialRequests(plain);
    await browser.context.clearCookies();
    await plain.goto(`${login.bff.url}/login`);
    await plain.waitForURL(/\/interaction\//);
    expect(await plain.locator('button[data-passkey-start]').isHidden()).toBe(true);
    const uid = /\/interaction\/([A-Za-z0-9_-]+)/.exec(plain.url())![1]!;
    expect(uid).not.toBe(usedInteraction);
    const csrf = await plain.getAttribute('input[name=csrf]', 'value');
    const foreign = await postAsBrowser(`/interaction/${uid}/passkey`, new URLSearchParams({ csrf: csrf!, response: form.get('response')! }));
    expect(foreign.status).toBe(400);
    expect(foreign.text).toContain(PASSKEY_FAILED);
    await plain.goto(`${login.bff.url}/login`);
    await plain.waitForURL(/\/interaction\//);
    await plain.fill('input[name=username]', 'ari');
    await plain.fill('input[name=password]', PASSWORD);
    await Promise.all([plain.waitForURL(`${login.bff.url}/`), plain.click('button[type=submit]:has-text("Sign in")')]);
    expect(await acrLine(plain)).toContain(ACR_PWD);
    expect(plainMediations).toEqual([]);
    await plain.close();
  });
});
