import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { usernameKey } from '../../../src/iam/username.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { CLUSTER_ISSUER, startCluster, type Cluster } from '../../helpers/instances.js';

// Issue 16: a burst of parallel wrong passwords against one account from one address must get at
// most LOGIN_MAX_FAILURES_PER_ACCOUNT password checks, on one instance and across instances, and
// then the lock refuses the right password too.

const MAX = 5;
const PASSWORD = 'correct horse battery staple';
const BURSTS = [8, 20, 34];
const LOGIN_ENV = {
  LOGIN_MAX_FAILURES_PER_ACCOUNT: String(MAX),
  LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
  LOGIN_FAILURE_WINDOW_SECONDS: '600',
  LOGIN_LOCK_SECONDS: '600',
  LOGIN_DELAY_MS: '0',
};
const BY = { actor: 'test', initiatingEntity: 'admin' as const };

/** Where a login form can be posted: a base URL and the agent that reaches it. */
interface Target {
  base: string;
  agent: Agent;
}

/** A login page of a fresh authorization request: its path, the browser's cookies and the form's CSRF token. */
interface LoginForm {
  path: string;
  cookie: string;
  csrf: string;
}

function cookiesOf(header: string | string[] | undefined): string {
  return [header ?? []]
    .flat()
    .map((value) => value.split(';')[0])
    .join('; ');
}

/** `/auth` of the demo web-bff (PKCE), then the login page, as a browser would (no redirects followed). */
async function openLoginForm(target: Target): Promise<LoginForm> {
  const params = new URLSearchParams({
    client_id: 'web-bff',
    response_type: 'code',
    redirect_uri: 'http://localhost:3000/callback',
    scope: 'openid',
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const auth = await request(`${target.base}/auth?${params}`, { dispatcher: target.agent });
  await auth.body.dump();
  expect(auth.statusCode).toBe(303);
  const path = new URL(String(auth.headers.location), target.base).pathname;
  const cookie = cookiesOf(auth.headers['set-cookie']);
  const page = await request(`${target.base}${path}`, { headers: { cookie }, dispatcher: target.agent });
  const html = await page.body.text();
  expect(page.statusCode).toBe(200);
  return { path, cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]! };
}

async function postLogin(target: Target, form: LoginForm, username: string, password: string) {
  const response = await request(`${target.base}${form.path}/login`, {
    method: 'POST',
    headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: form.csrf, username, password }).toString(),
    dispatcher: target.agent,
  });
  const text = await response.body.text();
  return { status: response.statusCode, retryAfter: response.headers['retry-after'], text };
}

/** Audit records of `action` for `username` (recorded as its RFC 8265 comparison key). */
async function auditCount(db: Kysely<Database>, action: string, username: string): Promise<number> {
  const key = usernameKey(username);
  const rows = await db.selectFrom('audit_log').select('details').where('action', '=', action).execute();
  return rows.filter((row) => (row.details as { username?: string }).username === key).length;
}

/**
 * `size` wrong passwords in flight at once against `username` (spread over `targets`, one login
 * form per target), then the right password: at most MAX password checks (one `login.failure`
 * each), one `login.lock`, and the right password refused with the lock.
 */
async function burstThenRightPassword(db: Kysely<Database>, targets: Target[], username: string, size: number) {
  const forms = await Promise.all(targets.map((target) => openLoginForm(target)));
  const outcomes = await Promise.all(
    Array.from({ length: size }, (_, i) => postLogin(targets[i % targets.length]!, forms[i % targets.length]!, username, `wrong guess ${i}`)),
  );
  const statuses = outcomes.map((outcome) => outcome.status);
  expect(statuses.every((status) => status === 400 || status === 429), `statuses ${statuses.join(',')}`).toBe(true);
  // A 400 is a password checked and found wrong before the limit; never more than MAX of them.
  expect(statuses.filter((status) => status === 400).length).toBeLessThanOrEqual(MAX - 1);
  const failures = await auditCount(db, 'login.failure', username);
  expect(failures, `${failures} password checks for a burst of ${size}`).toBeLessThanOrEqual(MAX);
  expect(failures).toBeGreaterThanOrEqual(1);
  expect(await auditCount(db, 'login.lock', username)).toBe(1);

  // Locked: the right password is refused too, at every instance, with Retry-After.
  for (const target of targets) {
    const right = await postLogin(target, await openLoginForm(target), username, PASSWORD);
    expect(right.status).toBe(429);
    expect(right.text).toContain('Too many failed attempts');
    expect(Number(right.retryAfter)).toBeGreaterThan(0);
  }
  expect(await auditCount(db, 'login.success', username)).toBe(0);
  expect(await auditCount(db, 'login.failure', username)).toBe(failures);
}

describe('a burst of wrong passwords on one instance', () => {
  let app: TestApp;
  let target: Target;
  beforeAll(async () => {
    app = await startTestApp({ env: LOGIN_ENV });
    const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
    for (const size of BURSTS) await users.create({ username: `burst-${size}`, password: PASSWORD }, BY);
    target = { base: app.issuer, agent: app.agent() };
  }, 60_000);
  afterAll(() => app?.stop());

  for (const size of BURSTS) {
    it(`${size} in flight get at most ${MAX} password checks, then the right password is locked out`, async () => {
      await burstThenRightPassword(app.custos.db, [target], `burst-${size}`, size);
    });
  }

  it('an unknown username is counted like a known one', async () => {
    await burstThenRightPassword(app.custos.db, [target], 'Nobody-By-This-Name', 34);
  });
});

describe('a burst of wrong passwords across two instances', () => {
  let cluster: Cluster;
  let db: Kysely<Database>;
  let targets: Target[];
  beforeAll(async () => {
    cluster = await startCluster(2, { env: LOGIN_ENV });
    db = createDb(cluster.databaseUrl, { max: 2 });
    const users = createUserService({ db, hasher: createPasswordHasher() });
    for (const size of BURSTS) await users.create({ username: `cluster-burst-${size}`, password: PASSWORD }, BY);
    targets = cluster.instances.map((instance) => ({ base: CLUSTER_ISSUER, agent: instance.agent() }));
  }, 90_000);
  afterAll(async () => {
    await db?.destroy();
    await cluster?.stop();
  });

  for (const size of BURSTS) {
    it(`${size} in flight over both instances get at most ${MAX} password checks in all`, async () => {
      await burstThenRightPassword(db, targets, `cluster-burst-${size}`, size);
    });
  }
});
