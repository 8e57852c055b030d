import { decodeJwt } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { CODE_FAILED, PASSKEY_FAILED } from '../../../src/signin/second-factor.js';
import { ACR_MFA, ACR_PWD } from '../../../src/verify/acr.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { newJar, REDIRECT_URI, redeemCode, VERIFIER, type Jar } from '../../helpers/code-flow.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { adminClient } from '../../helpers/admin.js';
import { authorize, submit, type Step } from '../../helpers/signin-flow.js';

/**
 * One-time codes (RFC 6238) as the second factor, with codes computed here from the secret the
 * enrollment page shows: enrollment, sign-in, replay, recovery codes, lockout, step-up, and
 * parallel submissions of one code.
 */
let app: TestApp;
let config: TempConfigDir;
const PASSWORD = 'correct horse battery';
const MFA_BFF: [string, string] = ['mfa-bff', DEMO.webBff[1]];
const users = new Map<string, string>();

beforeAll(async () => {
  const clients = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(new URL('../../../config/clients.json', import.meta.url), 'utf8'))) as {
    clients: Array<Record<string, unknown>>;
  };
  const webBff = clients.clients.find((client) => client.client_id === 'web-bff')!;
  config = await configDirWithClients([
    { ...webBff, client_id: 'mfa-bff', client_name: 'Payroll', require_mfa: true, backchannel_logout_uri: undefined },
    { ...webBff, client_id: 'phr-bff', client_name: 'Treasury', minimum_acr: 'urn:custos:acr:phr', backchannel_logout_uri: undefined },
  ]);
  app = await startTestApp({
    configDir: config.dir,
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '4', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000', LOGIN_DELAY_MS: '0', LOGIN_LOCK_SECONDS: '600' },
  });
  const service = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  for (const username of ['tess', 'pat', 'lou', 'sam', 'nora']) {
    users.set(username, (await service.create({ username, password: PASSWORD }, { actor: 'cli', initiatingEntity: 'admin' })).id);
  }
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

/** The code an authenticator app shows `offsetSeconds` from now. */
function codeAt(secret: string, offsetSeconds = 0): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + offsetSeconds * 1000 });
}

const redeem = (code: string, client: [string, string] = MFA_BFF) =>
  app.token({ grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI }, { basic: client });

async function passwordStep(jar: Jar, username: string, extra: Record<string, string> = {}, client = MFA_BFF[0]): Promise<Step> {
  const login = await authorize(app, jar, extra, client);
  expect(login.page).toContain('name="password"');
  return submit(app, jar, login, 'login', { username, password: PASSWORD });
}

/** Enrolls `username` (password, QR page, first code of the previous time step); returns the secret and recovery codes. */
async function enroll(username: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  const jar = newJar();
  const page = await passwordStep(jar, username);
  expect(page.status).toBe(200);
  expect(page.page).toContain('Set up two-step sign-in');
  expect(page.page).toContain('<svg');
  const secret = /class="secret">([A-Z2-7 ]+)</.exec(page.page!)![1]!.replaceAll(' ', '');
  const shown = await submit(app, jar, page, 'enroll-otp', { code: codeAt(secret, -30) });
  expect(shown.status).toBe(200);
  const recoveryCodes = [...shown.page!.matchAll(/<li>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})<\/li>/g)].map((match) => match[1]!);
  expect(recoveryCodes).toHaveLength(10);
  const done = await submit(app, jar, shown, 'continue', {});
  expect(done.code).toBeTruthy();
  const tokens = await redeem(done.code!);
  expect(decodeJwt(tokens.body.id_token)).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });
  return { secret, recoveryCodes };
}

describe('one-time codes', () => {
  let tess: { secret: string; recoveryCodes: string[] };

  it('a client with require_mfa has a new user enroll an authenticator app, confirmed by a first code; stored once, audited, with a credential-change event', async () => {
    tess = await enroll('tess');
    const id = users.get('tess')!;
    const db = app.custos.db;
    const totp = await db.selectFrom('signin_totp').selectAll().where('user_id', '=', id).execute();
    expect(totp).toHaveLength(1);
    const codes = await db.selectFrom('signin_recovery_code').selectAll().where('user_id', '=', id).execute();
    expect(codes).toHaveLength(10);
    for (const row of codes) {
      expect(row.code_hash).toMatch(/^\$argon2id\$/);
      expect(tess.recoveryCodes.map((code) => code.replaceAll('-', ''))).not.toContain(row.code_hash);
    }
    const audit = await db.selectFrom('audit_log').select(['action', 'actor']).where('target', '=', `user:${id}`).where('action', '=', 'user.totp.enroll').execute();
    expect(audit).toEqual([{ action: 'user.totp.enroll', actor: `user:${id}` }]);
    const events = await db.selectFrom('event_outbox').selectAll().execute();
    const change = events.map((row) => JSON.stringify(row)).filter((row) => row.includes(id) && row.includes('credential'));
    expect(change.length).toBe(1);
    expect(change[0]).toContain('app');
    // The secret and the recovery codes appear in no log line.
    const logs = app.logs.join('\n');
    expect(logs).not.toContain(tess.secret);
    for (const code of tess.recoveryCodes) expect(logs).not.toContain(code);
  });

  it('signs in with password and a code (amr pwd otp mfa); the same code again is refused', async () => {
    const jar = newJar();
    const step = await passwordStep(jar, 'tess');
    expect(step.page).toContain('Enter your code');
    const code = codeAt(tess.secret);
    const done = await submit(app, jar, step, 'otp', { code });
    expect(done.code).toBeTruthy();
    const tokens = await redeem(done.code!);
    expect(decodeJwt(tokens.body.id_token)).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });
    expect(decodeJwt(tokens.body.access_token)).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });

    const again = newJar();
    const replay = await submit(app, again, await passwordStep(again, 'tess'), 'otp', { code });
    expect(replay.status).toBe(400);
    expect(replay.code).toBeUndefined();
    expect(replay.page).toContain(CODE_FAILED);
  });

  it('a recovery code signs in once', async () => {
    const [first] = tess.recoveryCodes;
    const jar = newJar();
    const done = await submit(app, jar, await passwordStep(jar, 'tess'), 'recovery', { recovery_code: first!.toLowerCase() });
    expect(done.code).toBeTruthy();
    expect(decodeJwt((await redeem(done.code!)).body.id_token)).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });

    const again = newJar();
    const reused = await submit(app, again, await passwordStep(again, 'tess'), 'recovery', { recovery_code: first! });
    expect(reused.status).toBe(400);
    expect(reused.page).toContain(CODE_FAILED);
  });

  it('of parallel submissions of one code, and of one recovery code, exactly one signs in', async () => {
    const pat = await enroll('pat');
    const jars = [newJar(), newJar(), newJar()];
    const steps = await Promise.all(jars.map((jar) => passwordStep(jar, 'pat')));
    const code = codeAt(pat.secret);
    const outcomes = await Promise.all(jars.map((jar, i) => submit(app, jar, steps[i]!, 'otp', { code })));
    expect(outcomes.filter((outcome) => outcome.code).length).toBe(1);
    expect(outcomes.filter((outcome) => outcome.status === 400).length).toBe(2);

    const more = [newJar(), newJar()];
    const pages = await Promise.all(more.map((jar) => passwordStep(jar, 'pat')));
    const recovered = await Promise.all(more.map((jar, i) => submit(app, jar, pages[i]!, 'recovery', { recovery_code: pat.recoveryCodes[3]! })));
    expect(recovered.filter((outcome) => outcome.code).length).toBe(1);
    const used = await app.custos.db.selectFrom('signin_recovery_code').select('used_at').where('user_id', '=', users.get('pat')!).where('used_at', 'is not', null).execute();
    expect(used).toHaveLength(1);
  });

  it('wrong codes lock the account as wrong passwords do: then even the right password is refused, with Retry-After', async () => {
    const lou = await enroll('lou');
    const valid = new Set([-60, -30, 0, 30, 60].map((offset) => codeAt(lou.secret, offset)));
    const wrong = ['000000', '111111', '222222', '333333', '444444', '555555'].find((code) => !valid.has(code))!;
    const jar = newJar();
    let step = await passwordStep(jar, 'lou');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      step = await submit(app, jar, step, 'otp', { code: wrong });
      statuses.push(step.status);
      expect(step.page).toContain(CODE_FAILED);
    }
    // The fourth failure reaches LOGIN_MAX_FAILURES_PER_ACCOUNT (the enrollment's success cleared the counter).
    expect(statuses).toEqual([400, 400, 400, 429]);
    expect(Number(step.retryAfter)).toBeGreaterThan(500);
    const fresh = newJar();
    const login = await authorize(app, fresh, {}, MFA_BFF[0]);
    const refused = await submit(app, fresh, login, 'login', { username: 'lou', password: PASSWORD });
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(500);
    expect(refused.page).toContain('Too many failed attempts');
  });

  it('a password session asked for mfa (acr_values) gets only the code page, then an mfa session', async () => {
    const sam = await enroll('sam');
    const jar = newJar();
    const first = await passwordStep(jar, 'sam', {}, DEMO.webBff[0]);
    expect(first.code).toBeTruthy();
    expect(decodeJwt((await redeemCode(app, first.code!)).body.id_token)).toMatchObject({ acr: ACR_PWD, amr: ['pwd'] });

    const stepUp = await authorize(app, jar, { acr_values: ACR_MFA });
    expect(stepUp.status).toBe(200);
    expect(stepUp.page).toContain('Enter your code');
    expect(stepUp.page).not.toContain('name="password"');
    const done = await submit(app, jar, stepUp, 'otp', { code: codeAt(sam.secret, 30) });
    expect(done.code).toBeTruthy();
    const idToken = decodeJwt((await redeemCode(app, done.code!)).body.id_token);
    expect(idToken).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });

    // The session is now mfa: the next request asking for it gets a code without any page.
    const after = await authorize(app, jar, { acr_values: ACR_MFA });
    expect(after.code).toBeTruthy();
  });

  it('a request the session does not meet with prompt=none gets login_required; a phishing-resistant minimum asks a user with an app for its code before a first passkey', async () => {
    const jar = newJar();
    const first = await passwordStep(jar, 'tess', {}, DEMO.webBff[0]);
    expect(first.code).toBeTruthy();
    const silent = await authorize(app, jar, { acr_values: ACR_MFA, prompt: 'none' });
    expect(silent.error).toBe('login_required');

    const strict = newJar();
    const next = await passwordStep(strict, 'tess', {}, 'phr-bff');
    expect(next.status).toBe(200);
    expect(next.page).toContain('Enter your code');
    expect(next.page).not.toContain('Create a passkey');
  });

  it('an administrator lists and resets a user\'s authenticators: audited, a credential-change delete event, and the next sign-in sets up again', async () => {
    const admin = await adminClient(app);
    const id = users.get('tess')!;
    const listed = await admin.call('GET', `/admin/users/${id}/authenticators`);
    expect(listed.status).toBe(200);
    expect(listed.body.authenticators).toEqual([
      expect.objectContaining({ id: 'totp', type: 'totp', recovery_codes_left: 9 }),
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(tess.secret);
    expect((await admin.call('GET', '/admin/users/00000000-0000-4000-8000-000000000000/authenticators')).status).toBe(404);
    expect((await admin.call('DELETE', `/admin/users/${id}/authenticators/nope`)).status).toBe(400);

    const reset = await admin.call('DELETE', `/admin/users/${id}/authenticators`);
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ removed: ['totp'] });
    const db = app.custos.db;
    expect(await db.selectFrom('signin_totp').selectAll().where('user_id', '=', id).execute()).toHaveLength(0);
    expect(await db.selectFrom('signin_recovery_code').selectAll().where('user_id', '=', id).execute()).toHaveLength(0);
    const deletes = (await db.selectFrom('event_outbox').select('payload').execute())
      .map((row) => JSON.stringify(row.payload))
      .filter((event) => event.includes(id) && event.includes('"delete"') && event.includes('"app"'));
    expect(deletes).toHaveLength(1);
    expect(await db.selectFrom('audit_log').select('actor').where('target', '=', `user:${id}`).where('action', '=', 'user.authenticators.reset').execute()).toHaveLength(1);

    const jar = newJar();
    const again = await passwordStep(jar, 'tess');
    expect(again.page).toContain('Set up two-step sign-in');
  });

  it('a forged or unknown passkey from an anonymous browser gets the one message and leaves no audit row', async () => {
    const count = async () => Number((await app.custos.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const jar = newJar();
    const login = await authorize(app, jar);
    for (const response of ['garbage', JSON.stringify({ id: 'bm90LWEtY3JlZGVudGlhbA', rawId: 'x', type: 'public-key', response: {} }), '{"id":1}']) {
      const refused = await submit(app, jar, login, 'passkey', { response });
      expect(refused.status).toBe(400);
      expect(refused.page).toContain(PASSKEY_FAILED);
    }
    expect(await count()).toBe(before);
  });

  it('an administrator requires an authenticator app at the next sign-in: a client asking only a password gets the setup, once', async () => {
    const admin = await adminClient(app);
    const id = users.get('nora')!;
    const required = await admin.call('PUT', `/admin/users/${id}/authenticators/enrollment`, { body: { factor: 'otp' } });
    expect(required.status).toBe(200);
    expect((await admin.call('PUT', `/admin/users/${id}/authenticators/enrollment`, { body: { factor: 'sms' } })).status).toBe(400);

    const jar = newJar();
    const page = await passwordStep(jar, 'nora', {}, DEMO.webBff[0]);
    expect(page.page).toContain('Set up two-step sign-in');
    const secret = /class="secret">([A-Z2-7 ]+)</.exec(page.page!)![1]!.replaceAll(' ', '');
    const shown = await submit(app, jar, page, 'enroll-otp', { code: codeAt(secret, -30) });
    const done = await submit(app, jar, shown, 'continue', {});
    expect(done.code).toBeTruthy();
    expect(decodeJwt((await redeemCode(app, done.code!)).body.id_token)).toMatchObject({ acr: ACR_MFA });
    expect(await app.custos.db.selectFrom('signin_enrollment_required').selectAll().where('user_id', '=', id).execute()).toHaveLength(0);

    const next = newJar();
    const plain = await passwordStep(next, 'nora', {}, DEMO.webBff[0]);
    expect(plain.code).toBeTruthy();
  });
});
