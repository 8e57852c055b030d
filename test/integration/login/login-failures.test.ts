import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { LOGIN_FAILED } from '../../../src/signin/interactions.routes.js';

let login: LoginFixture;
let browser: TestBrowser;
const PASSWORD = 'correct horse battery';
const WEB_BFF_HASH = '$argon2id$v=19$m=19456,p=1,t=2$ngXTuqlyKFpv5u9ao2QQmw$9puTsKQaRos3KKaXLMwz4bM1momfF6RyrKnH3mNKOFs';

beforeAll(async () => {
  login = await startLoginFixture({
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_LOCK_SECONDS: '2', LOGIN_FAILURE_WINDOW_SECONDS: '60', LOGIN_DELAY_MS: '20', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' },
    clients: [
      {
        client_id: 'partner-app',
        client_name: 'Partner <App>',
        client_secret_hash: WEB_BFF_HASH,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['https://partner.example.test/partner-callback'],
        scope: 'openid email',
      },
      {
        client_id: 'partner-orders',
        client_name: 'Partner Orders',
        client_secret_hash: WEB_BFF_HASH,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['https://partner.example.test/partner-callback'],
        scope: 'openid email profile orders orders:read',
        resources: ['https://api.custos.test/orders'],
        default_resource: 'https://api.custos.test/orders',
      },
    ],
  });
  await login.createUser({ username: 'carol', password: PASSWORD, roles: ['orders-reader'] });
  await login.createUser({ username: 'dave', password: PASSWORD, disabled: true });
  await login.createUser({ username: 'erin', password: PASSWORD });
  await login.createUser({ username: 'fay', password: PASSWORD });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

const db = () => login.app.custos.db;
const sessions = async () => (await db().selectFrom('oidc_model').select('id').where('model', '=', 'Session').execute()).length;
const audit = (action: string) => db().selectFrom('audit_log').selectAll().where('action', '=', action).orderBy('id').execute();

/** Opens a fresh login page through the BFF (new browser context cookies cleared). */
async function openLoginPage() {
  await browser.context.clearCookies();
  await browser.page.goto(`${login.bff.url}/login`);
  await browser.page.waitForURL(/\/interaction\/[^/]+$/);
}

/** The `name` of the focused element of the page (the script runs in the page, where `document` exists). */
const focused = () => browser.page.evaluate<string | null>('document.activeElement ? document.activeElement.getAttribute("name") : null');

async function submit(username: string, password: string): Promise<{ status: number; message: string | null; retryAfter?: string }> {
  const { page } = browser;
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]:has-text("Sign in")')]);
  await page.waitForLoadState();
  const headers = await response.allHeaders();
  const error = await page.$('.error');
  return { status: response.status(), message: error ? await error.textContent() : null, retryAfter: headers['retry-after'] };
}

describe.skipIf(BROWSER_UNAVAILABLE)('login failures', () => {
  it('wrong password, unknown user and disabled user get the same message and no session', async () => {
    const outcomes = [];
    for (const [username, password] of [
      ['carol', 'wrong password here'],
      ['nobody-by-this-name', PASSWORD],
      ['dave', PASSWORD],
    ] as const) {
      await openLoginPage();
      outcomes.push(await submit(username, password));
      expect(browser.page.url()).toMatch(/\/interaction\/[^/]+\/login$/);
    }
    expect(outcomes.map((o) => o.status)).toEqual([400, 400, 400]);
    expect(new Set(outcomes.map((o) => o.message))).toEqual(new Set([LOGIN_FAILED]));
    expect(await sessions()).toBe(0);
    expect(login.bff.sessions.size).toBe(0);
    const failures = await audit('login.failure');
    expect(failures.map((row) => row.details.reason)).toEqual(['wrong_password', 'unknown_user', 'disabled']);
    expect(failures.every((row) => row.outcome === 'failure' && row.actor === 'anonymous' && row.client_address)).toBe(true);
  });

  it('renders a username containing <script> escaped', async () => {
    await openLoginPage();
    const hostile = '<script>alert(1)</script>"><img src=x>';
    const outcome = await submit(hostile, 'whatever password');
    expect(outcome.message).toBe(LOGIN_FAILED);
    const html = await browser.page.content();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(await browser.page.inputValue('input[name=username]')).toBe(hostile);
    expect(await browser.page.$$('img')).toHaveLength(0);
  });

  it('locks an account after repeated failures (same message plus a retry hint, no 5xx) and unlocks after the lock', async () => {
    await openLoginPage();
    const first = await submit('erin', 'wrong one');
    const second = await submit('erin', 'wrong two');
    const third = await submit('erin', 'wrong three');
    expect([first.status, second.status]).toEqual([400, 400]);
    expect(third.status).toBe(429);
    expect(third.message).toContain(LOGIN_FAILED);
    expect(third.message).toMatch(/try again in \d+ seconds/);
    // Locked: even the right password is refused, with the same message.
    const locked = await submit('erin', PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.message).toContain(LOGIN_FAILED);
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    // Further attempts against the same lock are refused without adding audit rows.
    expect((await submit('erin', 'wrong four')).status).toBe(429);
    expect(await audit('login.lock')).toHaveLength(1);
    expect((await audit('login.locked')).map((row) => row.outcome)).toEqual(['denied']);
    // An unknown username locks the same way: a lock reveals nothing about which accounts exist.
    for (let i = 0; i < 3; i++) await submit('ghost-user', 'wrong');
    expect((await submit('ghost-user', 'wrong')).status).toBe(429);

    await new Promise((resolve) => setTimeout(resolve, 2200));
    await Promise.all([browser.page.waitForURL(`${login.bff.url}/`), submit('erin', PASSWORD)]);
    expect(login.bff.sessions.size).toBe(1);
    login.bff.sessions.clear();
  });

  it('a successful login clears the failures counted against the account', async () => {
    const counter = () =>
      db().selectFrom('login_throttle').select('points').where('key', '=', `account:${createHash('sha256').update('carol').digest('base64url')}`).executeTakeFirst();
    await openLoginPage();
    expect((await submit('carol', 'wrong once more')).status).toBe(400);
    expect((await counter())?.points).toBeGreaterThanOrEqual(1);
    await Promise.all([browser.page.waitForURL(`${login.bff.url}/`), submit('Carol', PASSWORD)]);
    expect(await counter()).toBeUndefined();
    expect((await audit('login.success')).at(-1)?.details).toMatchObject({ client_id: 'web-bff' });
    login.bff.sessions.clear();
  });

  it('refuses a login POST without the CSRF token (or with a wrong one)', async () => {
    await openLoginPage();
    const before = await sessions();
    const action = await browser.page.getAttribute('form[action$="/login"]', 'action');
    const url = new URL(action!, browser.page.url()).href;
    for (const csrf of [undefined, 'forged-token', '']) {
      const form: Record<string, string> = { username: 'carol', password: PASSWORD };
      if (csrf !== undefined) form.csrf = csrf;
      // The browser's own cookies: only the token is missing.
      const cookie = (await browser.context.cookies(url)).map((c) => `${c.name}=${c.value}`).join('; ');
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams(form).toString(),
        dispatcher: login.app.agent(),
      });
      expect(response.statusCode).toBe(403);
      expect(await response.body.text()).toContain('did not come from this site');
    }
    expect(await sessions()).toBe(before);
    // Without the interaction cookie, a valid-looking token does not help either.
    const token = await browser.page.getAttribute('form[action$="/login"] input[name=csrf]', 'value');
    const anonymous = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: token!, username: 'carol', password: PASSWORD }).toString(),
      dispatcher: login.app.agent(),
    });
    expect(anonymous.statusCode).toBe(400);
    await anonymous.body.dump();
  });

  it('Cancel on the login page returns access_denied to the client', async () => {
    await openLoginPage();
    await Promise.all([browser.page.waitForURL(/\/callback\?/), browser.page.click('button:has-text("Cancel")')]);
    expect(new URL(browser.page.url()).searchParams.get('error')).toBe('access_denied');
    expect(login.bff.lastAuthorizationError).toBe('access_denied');
    // Nobody had signed in: an anonymous cancel is counted, not audited (issue 16).
    expect(await audit('login.cancel')).toEqual([]);
    expect((await login.app.custos.metrics.anonymousOutcomes.get()).values).toEqual([expect.objectContaining({ labels: { action: 'login.cancel' }, value: 1 })]);
  });

  it('asks a client that is not first-party for consent; Deny returns access_denied, Allow a code', async () => {
    const { page } = browser;
    await browser.context.clearCookies();
    const authorize = () => {
      const verifier = randomBytes(32).toString('base64url');
      const params = new URLSearchParams({
        client_id: 'partner-app',
        response_type: 'code',
        redirect_uri: 'https://partner.example.test/partner-callback',
        scope: 'openid email',
        state: 'st4te',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      });
      return `${login.app.issuer}/auth?${params}`;
    };
    // The partner's callback host does not exist: the redirect is observed as a request.
    const toPartner = async (click: Promise<void>) => {
      const [sent] = await Promise.all([page.waitForRequest(/partner-callback/), click]);
      await page.waitForURL(/^chrome-error:/).catch(() => {});
      await page.goto('about:blank');
      return new URL(sent.url()).searchParams;
    };
    await page.goto(authorize());
    await page.fill('input[name=username]', 'carol');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(/\/interaction\/[^/]+$/), page.click('button[type=submit]:has-text("Sign in")')]);
    expect(await page.textContent('h1')).toContain('Allow access');
    expect(await page.content()).toContain('Partner &lt;App&gt;');
    expect((await toPartner(page.click('button:has-text("Deny")'))).get('error')).toBe('access_denied');
    expect((await audit('consent.deny')).length).toBe(1);

    await page.goto(authorize());
    await page.waitForURL(/\/interaction\/[^/]+$/);
    expect(await page.textContent('h1')).toContain('Allow access');
    expect((await toPartner(page.click('button:has-text("Allow")'))).get('code')).toBeTruthy();
    expect((await audit('consent.grant')).length).toBe(1);
  });

  it('a failed sign-in keeps the username and puts the focus on the password (issue 22 §10)', async () => {
    await openLoginPage();
    expect(await focused()).toBe('username');
    expect((await submit('fay', 'not the password')).message).toBe(LOGIN_FAILED);
    expect(await browser.page.inputValue('input[name=username]')).toBe('fay');
    expect(await focused()).toBe('password');
    // Without a username there is nothing to keep: the focus stays on the username.
    await browser.page.fill('input[name=username]', ' ');
    await browser.page.fill('input[name=password]', 'x');
    await Promise.all([browser.page.waitForResponse((r) => r.request().method() === 'POST'), browser.page.click('button[type=submit]:has-text("Sign in")')]);
    await browser.page.waitForLoadState();
    expect(await focused()).toBe('username');
  });

  it('the consent page describes each scope once: identity scopes in words, API scopes by their resource-server descriptions (issue 22 §10)', async () => {
    const { page } = browser;
    await browser.context.clearCookies();
    const params = new URLSearchParams({
      client_id: 'partner-orders',
      response_type: 'code',
      redirect_uri: 'https://partner.example.test/partner-callback',
      scope: 'openid email profile orders orders:read',
      state: 'st4te',
      code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
      code_challenge_method: 'S256',
    });
    await page.goto(`${login.app.issuer}/auth?${params}`);
    await page.fill('input[name=username]', 'fay');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(/\/interaction\/[^/]+$/), page.click('button[type=submit]:has-text("Sign in")')]);
    expect(await page.textContent('h1')).toContain('Allow access');
    const items = (await page.$$eval('main li', (lis) => lis.map((li) => (li.textContent ?? '').replace(/\s+/g, ' ').trim())));
    expect(items).toEqual([
      'Know who you are (sign you in)',
      'See your e-mail address',
      'See your username',
      'See and place your orders (orders)',
      'See your orders (orders:read)',
    ]);
    expect(await page.$$eval('main p.resource', (ps) => ps.map((p) => p.textContent))).toEqual(['Call https://api.custos.test/orders:']);
    const text = (await page.textContent('main')) ?? '';
    expect(text).not.toContain('use your identity');
    // Each scope once.
    for (const scope of ['orders', 'orders:read']) expect(text.split(`(${scope})`).length - 1, scope).toBe(1);
  });
});
