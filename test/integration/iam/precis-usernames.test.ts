import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { LOGIN_FAILED } from '../../../src/signin/interactions.routes.js';

/**
 * Issue 16 §4: look-alike usernames are the same name or refused (RFC 8265), through the real
 * admin API (mTLS + bound admin token) and the real login page (Chromium through the BFF).
 */

let login: LoginFixture;
let admin: AdminClient;
let browser: TestBrowser;
let aliceId: string;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  login = await startLoginFixture({
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_LOCK_SECONDS: '60', LOGIN_FAILURE_WINDOW_SECONDS: '60', LOGIN_DELAY_MS: '0', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' },
  });
  admin = await adminClient(login.app);
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

const db = () => login.app.custos.db;
const fieldsOf = (body: any) => (body.fields ?? []).map((f: { in: string; field: string }) => `${f.in}:${f.field}`);
const usernames = async () => (await db().selectFrom('iam_user').select(['username', 'username_key']).orderBy('username_key').execute());

async function submit(username: string, password: string): Promise<{ status: number; message: string | null }> {
  const { page } = browser;
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]:has-text("Sign in")')]);
  await page.waitForLoadState();
  const error = await page.$('.error');
  return { status: response.status(), message: error ? await error.textContent() : null };
}

describe.skipIf(BROWSER_UNAVAILABLE)('creating look-alike usernames through the admin API', () => {
  it('creates alice', async () => {
    const created = await admin.call('POST', '/admin/users', { body: { username: 'alice', password: PASSWORD } });
    expect(created.status).toBe(201);
    expect(created.body.username).toBe('alice');
    aliceId = created.body.id;
  });

  it('full-width ａｌｉｃｅ is the same name: 409 username_taken naming the field', async () => {
    const response = await admin.call('POST', '/admin/users', { body: { username: 'ａｌｉｃｅ' } });
    expect([response.status, response.body.error, fieldsOf(response.body)]).toEqual([409, 'username_taken', ['body:username']]);
    const upper = await admin.call('POST', '/admin/users', { body: { username: 'ＡＬＩＣＥ' } });
    expect([upper.status, upper.body.error]).toEqual([409, 'username_taken']);
  });

  it('аlice (Cyrillic а) mixes scripts: 400 invalid_username with an error body', async () => {
    const response = await admin.call('POST', '/admin/users', { body: { username: '\u0430lice', password: PASSWORD } });
    expect([response.status, response.body.error, fieldsOf(response.body)]).toEqual([400, 'invalid_username', ['body:username']]);
    expect(response.body.error_description).toMatch(/one script/);
  });

  it('alice followed by U+200B holds an invisible character: 400 invalid_username with an error body', async () => {
    const response = await admin.call('POST', '/admin/users', { body: { username: 'alice\u200B', password: PASSWORD } });
    expect([response.status, response.body.error, fieldsOf(response.body)]).toEqual([400, 'invalid_username', ['body:username']]);
    expect(response.body.error_description).toContain('U+200B');
  });

  it('stored only alice; names of other scripts and a full-width new name are accepted (stored half-width)', async () => {
    expect(await usernames()).toEqual([{ username: 'alice', username_key: 'alice' }]);
    for (const [name, stored] of [
      ['анна', 'анна'],
      ['Jürgen', 'Jürgen'],
      ['山田', '山田'],
      ['ｂｏｂ', 'bob'],
    ]) {
      const created = await admin.call('POST', '/admin/users', { body: { username: name } });
      expect([name, created.status, created.body.username]).toEqual([name, 201, stored]);
    }
    const audit = await db().selectFrom('audit_log').select('outcome').where('action', '=', 'user.create').execute();
    expect(audit).toHaveLength(5);
    const refused = await admin.call('POST', '/admin/users', { body: { username: 'JÜRGEN' } });
    expect(refused.status).toBe(409);
  });
});

describe.skipIf(BROWSER_UNAVAILABLE)('signing in with another form of the name', () => {
  it.each(['ALICE', 'ａｌｉｃｅ'])('%s signs in as alice', async (typed) => {
    await browser.context.clearCookies();
    login.bff.sessions.clear();
    await login.signIn(browser.page, typed, PASSWORD);
    const session = [...login.bff.sessions.values()][0]!;
    expect(session.claims).toMatchObject({ sub: aliceId, preferred_username: 'alice' });
  });

  it('the look-alikes аlice and alice+U+200B do not sign in as alice', async () => {
    for (const typed of ['\u0430lice', 'alice\u200B']) {
      await browser.context.clearCookies();
      await browser.page.goto(`${login.bff.url}/login`);
      await browser.page.waitForURL(/\/interaction\//);
      const outcome = await submit(typed, PASSWORD);
      expect([typed, outcome.status, outcome.message]).toEqual([typed, 400, LOGIN_FAILED]);
    }
    const failures = await db().selectFrom('audit_log').select(['details', 'target']).where('action', '=', 'login.failure').orderBy('id').execute();
    expect(failures.map((row) => [row.target, row.details.reason])).toEqual([
      [null, 'unknown_user'],
      [null, 'unknown_user'],
    ]);
  });

  it('failures under different forms of one name count against one account (the throttle gets the prepared name)', async () => {
    await browser.context.clearCookies();
    await browser.page.goto(`${login.bff.url}/login`);
    await browser.page.waitForURL(/\/interaction\//);
    const outcomes = [await submit('ALICE', 'wrong one'), await submit('ａｌｉｃｅ', 'wrong two'), await submit('Alice', 'wrong three')];
    expect(outcomes.map((o) => o.status)).toEqual([400, 400, 429]);
    expect((await submit('alice', PASSWORD)).status).toBe(429);
    const rows = await db().selectFrom('audit_log').select(['details', 'target']).where('action', '=', 'login.failure').where('target', '=', `user:${aliceId}`).orderBy('id').execute();
    expect(rows.map((row) => row.details.username)).toEqual(['alice', 'alice', 'alice']);
  });
});
