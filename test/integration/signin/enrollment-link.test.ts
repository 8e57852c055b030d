import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUsersCommands } from '../../../src/cli/users.command.js';
import { LINK_GONE } from '../../../src/signin/enroll.routes.js';
import { enrollmentTokenHash } from '../../../src/signin/enrollment-link.js';
import { ACR_PHR } from '../../../src/verify/acr.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { adminClient } from '../../helpers/admin.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { addPasskeyAuthenticator, webAuthnSession } from '../../helpers/virtual-authenticator.js';
import { withoutPasskeyAutofill } from '../../helpers/passkey-autofill.js';

/**
 * An administrator's one-time enrollment link (admin API and CLI): only its hash stored, never
 * logged; taken once under parallel requests; in Chromium with a virtual authenticator the user
 * creates a passkey without a password and signs in with it alone.
 */
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'custos-signin-screens');
let login: LoginFixture;
let browser: TestBrowser | undefined;
let rui: string;
let eva: string;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  login = await startLoginFixture();
  rui = await login.createUser({ username: 'rui', password: 'correct horse battery' });
  eva = (await login.users.create({ username: 'eva' }, { actor: 'cli', initiatingEntity: 'admin' })).id;
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;

async function startEnrollment(token: string) {
  const response = await request(`${login.app.issuer}/enroll/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    dispatcher: login.app.agent(),
  });
  return { status: response.statusCode, text: await response.body.text(), cookie: response.headers['set-cookie'] };
}

/** `custos users enrollment-link ...` in this process, against the test database. */
async function cli(args: string[]): Promise<string> {
  const saved = { ...process.env };
  Object.assign(process.env, { NODE_ENV: 'development', LOG_LEVEL: 'silent', DATABASE_URL: login.app.databaseUrl, ISSUER: login.app.issuer });
  const out: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...values: unknown[]) => void out.push(values.join(' '));
  console.error = () => {};
  try {
    const program = new Command('custos').exitOverride();
    registerUsersCommands(program);
    await program.parseAsync(['node', 'custos', 'users', ...args]);
    return out.join('\n');
  } finally {
    console.log = log;
    console.error = error;
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

describe('one-time enrollment links', () => {
  it('are issued through the admin API (hash stored, nothing logged), refuse bad input, and are taken exactly once by parallel requests', async () => {
    const admin = await adminClient(login.app);
    const path = `/admin/users/${rui}/authenticators/enrollment-links`;
    expect((await admin.call('POST', path, { body: { expires_in: 10 } })).status).toBe(400);
    expect((await admin.call('POST', path, { body: { expires_in: 3600, extra: true } })).status).toBe(400);
    expect((await admin.call('POST', '/admin/users/00000000-0000-4000-8000-000000000000/authenticators/enrollment-links', { body: {} })).status).toBe(404);
    const issued = await admin.call('POST', path, { body: { expires_in: 3600 } });
    expect(issued.status).toBe(201);
    expect(issued.body.url).toMatch(new RegExp(`^${login.app.issuer}/enroll\\?token=[A-Za-z0-9_-]{43}$`));
    const token = tokenOf(issued.body.url);

    const db = login.app.custos.db;
    const rows = await db.selectFrom('signin_enrollment_link').selectAll().where('user_id', '=', rui).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(enrollmentTokenHash(token));
    expect(JSON.stringify(rows)).not.toContain(token);
    const audit = await db.selectFrom('audit_log').select(['actor', 'details']).where('action', '=', 'user.enrollment_link.issue').execute();
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(token);

    // Opening the link changes nothing; a wrong token is refused alike.
    const opened = await request(issued.body.url, { dispatcher: login.app.agent() });
    expect(opened.statusCode).toBe(200);
    expect(await opened.body.text()).toContain('Set up a passkey');
    const wrong = await request(`${login.app.issuer}/enroll?token=${'A'.repeat(43)}`, { dispatcher: login.app.agent() });
    expect(wrong.statusCode).toBe(410);
    expect(await wrong.body.text()).toContain(LINK_GONE.slice(0, 30));

    // Eight browsers continue at once: one gets the passkey page, seven are refused.
    const results = await Promise.all(Array.from({ length: 8 }, () => startEnrollment(token)));
    expect(results.map((result) => result.status).sort()).toEqual([200, 410, 410, 410, 410, 410, 410, 410]);
    expect(results.find((result) => result.status === 200)!.text).toContain('Create a passkey');
    expect((await request(issued.body.url, { dispatcher: login.app.agent() })).statusCode).toBe(410);
    expect(await db.selectFrom('audit_log').select('id').where('action', '=', 'user.enrollment_link.take').execute()).toHaveLength(1);

    // The passkey step without the browser that took the link: refused.
    const foreign = await request(`${login.app.issuer}/enroll/passkey`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, csrf: 'x', response: '{}' }).toString(),
      dispatcher: login.app.agent(),
    });
    expect(foreign.statusCode).toBe(410);
    await foreign.body.dump();

    // Never in the logs.
    expect(login.app.logs.join('\n')).not.toContain(token);
  });

  it.skipIf(BROWSER_UNAVAILABLE)('lets a user without a password create a passkey in Chromium (CLI-issued link), then sign in with it alone; the link works once', async () => {
    const url = await cli(['enrollment-link', '--username', 'eva', '--expires-in', '600']);
    expect(url).toMatch(new RegExp(`^${login.app.issuer}/enroll\\?token=`));
    browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
    // The passkey button is what is tested here (autofill: passkey-autofill.test.ts).
    await withoutPasskeyAutofill(browser.context);
    const { page } = browser;
    const cdp = await webAuthnSession(browser.context, page);
    await addPasskeyAuthenticator(cdp, 'usb');

    await page.goto(url);
    await expect(page.locator('h1').textContent()).resolves.toBe('Set up a passkey');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'enrollment-link.png'), fullPage: true });
    await Promise.all([page.waitForURL(`${login.app.issuer}/enroll/start`), page.click('button:has-text("Continue")')]);
    const create = page.locator('button:has-text("Create a passkey")');
    await create.waitFor({ state: 'visible' });
    expect(await page.locator('[onclick], [onsubmit], script:not([src]):not([type="application/json"])').count()).toBe(0);
    await page.fill('#passkey-name', 'YubiKey');
    await Promise.all([page.waitForURL(`${login.app.issuer}/enroll/passkey`), create.click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Your passkey is ready');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'enrollment-link-done.png'), fullPage: true });

    const db = login.app.custos.db;
    expect(await db.selectFrom('signin_passkey').select(['name', 'attachment']).where('user_id', '=', eva).execute()).toEqual([{ name: 'YubiKey', attachment: 'cross-platform' }]);
    const events = (await db.selectFrom('event_outbox').select('payload').execute()).map((row) => JSON.stringify(row.payload)).filter((event) => event.includes(eva));
    expect(events.filter((event) => event.includes('fido2-roaming') && event.includes('"create"'))).toHaveLength(1);
    expect(await db.selectFrom('audit_log').select('id').where('action', '=', 'user.enrollment_link.use').where('target', '=', `user:${eva}`).execute()).toHaveLength(1);

    // Used: the link is gone.
    const again = await page.goto(url);
    expect(again!.status()).toBe(410);

    // Eva (no password) signs in with the passkey alone.
    await page.goto(`${login.bff.url}/login`);
    const passkey = page.locator('button:has-text("Sign in with a passkey")');
    await passkey.waitFor({ state: 'visible' });
    await Promise.all([page.waitForURL(`${login.bff.url}/`), passkey.click()]);
    expect(await page.textContent('#acr')).toContain(ACR_PHR);
    expect(login.app.logs.join('\n')).not.toContain(tokenOf(url));
  });
});
