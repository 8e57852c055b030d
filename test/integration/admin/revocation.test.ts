import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { exchange, holdingsOf, isActive, refresh, tokenEndpoint, type UserHoldings } from '../../helpers/user-tokens.js';

let app: TestApp;
let admin: AdminClient;
let config: TempConfigDir;
let receiver: Server;
/** Logout tokens POSTed to web-bff's back-channel logout URI (a real HTTP receiver here). */
const logoutTokens: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && req.url === '/backchannel-logout' && token) logoutTokens.push(token);
      res.statusCode = token ? 200 : 400;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  config = await configDirWithClients([]);
  const file = path.join(config.dir, 'clients.json');
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { clients: Array<Record<string, unknown>> };
  parsed.clients.find((client) => client.client_id === 'web-bff')!.backchannel_logout_uri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel-logout`;
  await writeFile(file, JSON.stringify(parsed));
  app = await startTestApp({ configDir: config.dir });
  admin = await adminClient(app);
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** Verifies a logout token (OpenID Connect Back-Channel Logout 1.0 §2.4) with the server's keys. */
async function verifyLogoutToken(token: string) {
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(publicJwks(app.custos.keys())), {
    issuer: app.issuer,
    audience: 'web-bff',
    typ: 'logout+jwt',
  });
  return { payload, protectedHeader };
}

async function newUser(username: string): Promise<string> {
  const response = await admin.call('POST', '/admin/users', { body: { username } });
  expect(response.status).toBe(201);
  return response.body.id;
}

/** Everything the user holds is usable (so the assertions after revocation can fail). */
async function expectUsable(holdings: UserHoldings): Promise<string> {
  expect(await isActive(app, holdings.accessToken, { client: 'orders-api' })).toBe(true);
  expect(await isActive(app, holdings.resumeToken, { client: 'billing-worker' })).toBe(true);
  expect(await isActive(app, holdings.chainedResumeToken, { client: 'billing-worker' })).toBe(true);
  expect(await isActive(app, holdings.opaqueAccessToken, { basic: DEMO.webBff })).toBe(true);
  const refreshed = await refresh(app, holdings.refreshToken);
  expect([refreshed.status, refreshed.body.error]).toEqual([200, undefined]);
  return refreshed.body.refresh_token ?? holdings.refreshToken;
}

async function expectRevoked(holdings: UserHoldings, refreshToken: string) {
  const refreshed = await refresh(app, refreshToken);
  expect([refreshed.status, refreshed.body.error]).toEqual([400, 'invalid_grant']);
  expect(await isActive(app, holdings.accessToken, { client: 'orders-api' })).toBe(false);
  expect(await isActive(app, holdings.resumeToken, { client: 'billing-worker' })).toBe(false);
  expect(await isActive(app, holdings.chainedResumeToken, { client: 'billing-worker' })).toBe(false);
  expect(await isActive(app, holdings.opaqueAccessToken, { basic: DEMO.webBff })).toBe(false);
  for (const [client, token] of [
    ['orders-api', holdings.accessToken],
    ['billing-worker', holdings.resumeToken],
    ['billing-worker', holdings.chainedResumeToken],
  ] as const) {
    const again = await exchange(app, client, token);
    expect([again.status, again.body.error]).toEqual([400, 'invalid_request']);
  }
}

async function storedModelsOf(userId: string) {
  return app.custos.db
    .selectFrom('oidc_model')
    .select(['model'])
    .where((eb) => eb.or([eb(eb.ref('payload', '->>').key('accountId' as never), '=', userId)]))
    .execute();
}

describe('DELETE /admin/users/{id}/sessions', () => {
  it('revokes sessions, grants, refresh and opaque tokens, JWT access tokens and resume tokens exchanged from them', async () => {
    const userId = await newUser('mallory-victim');
    const otherId = await newUser('bystander');
    const holdings = await holdingsOf(app, userId);
    const other = await holdingsOf(app, otherId);
    const rotated = await expectUsable(holdings);
    const listed = await admin.call('GET', `/admin/users/${userId}/sessions`);
    expect(listed.body).toMatchObject({ items: [{ id: holdings.sessionUid, clients: ['web-bff'], login_at: expect.any(String) }], next_cursor: null });
    expect(JSON.stringify(listed.body)).not.toMatch(/jti|grantId/);

    const revoked = await admin.call('DELETE', `/admin/users/${userId}/sessions`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ sessions_revoked: 1, grants_revoked: 1, backchannel_logout: { sent: 1, failed: 0 } });
    expect(revoked.body.tokens_revoked).toBeGreaterThanOrEqual(2);
    expect(logoutTokens).toHaveLength(1);
    const { payload } = await verifyLogoutToken(logoutTokens[0]!);
    expect(payload).toMatchObject({ sub: userId, sid: `sid-${userId.slice(0, 8)}`, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(payload.nonce).toBeUndefined();

    await expectRevoked(holdings, rotated);
    expect(await storedModelsOf(userId)).toEqual([]);
    expect((await admin.call('GET', `/admin/users/${userId}/sessions`)).body.items).toEqual([]);

    // Another user's holdings are untouched.
    await expectUsable(other);

    const event = await app.custos.db.selectFrom('event_outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'session-revoked', subject: userId });
    expect(event.payload).toMatchObject({ sessionIds: [holdings.sessionUid], initiatingEntity: 'admin' });
    const audit = await admin.call('GET', `/admin/audit?action=sessions.revoke&target=user:${userId}`);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0].details).toMatchObject({ sessions_revoked: 1, grants_revoked: 1 });
  });

  it('takes an optional reason for the audit record and the event (reason_admin)', async () => {
    const userId = await newUser('with-reason');
    await holdingsOf(app, userId);
    const revoked = await admin.call('DELETE', `/admin/users/${userId}/sessions`, { body: { reason: 'lost device' } });
    expect(revoked.status).toBe(200);
    const event = await app.custos.db.selectFrom('event_outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'session-revoked', subject: userId });
    expect(event.payload).toMatchObject({ reasonAdmin: 'lost device', initiatingEntity: 'admin' });
    // The whole user, not one session: consumers cut off every token of the user.
    expect(event.payload).not.toHaveProperty('sid');
    const audit = await admin.call('GET', `/admin/audit?action=sessions.revoke&target=user:${userId}`);
    expect(audit.body.items[0].details).toMatchObject({ reason: 'lost device' });
    const bad = await admin.call('DELETE', `/admin/users/${userId}/sessions`, { body: { reason: 'x', extra: 1 } });
    expect([bad.status, bad.body.error]).toEqual([400, 'invalid_request']);
  });

  it('does not outlive the revocation: tokens issued after it are active', async () => {
    const userId = await newUser('comes-back');
    await holdingsOf(app, userId);
    expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // JWT iat has one-second resolution
    const fresh = await mintUserAccessToken(app, { sub: userId });
    expect(await isActive(app, fresh, { client: 'orders-api' })).toBe(true);
    const resumed = await exchange(app, 'orders-api', fresh);
    expect(resumed.status).toBe(200);
  });

  it('disabling a user revokes everything they hold too', async () => {
    const userId = await newUser('to-disable');
    const holdings = await holdingsOf(app, userId);
    const rotated = await expectUsable(holdings);
    const disabled = await admin.call('POST', `/admin/users/${userId}/disable`, { body: { reason: 'compromised' } });
    expect([disabled.status, disabled.body.disabled]).toEqual([200, true]);
    await expectRevoked(holdings, rotated);
    const event = await app.custos.db.selectFrom('event_outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'account-disabled', subject: userId });
    expect(event.payload).toMatchObject({ sessionIds: [holdings.sessionUid], reasonAdmin: 'compromised' });
  });
});

describe('PUT /admin/users/{id}/password', () => {
  it('a new password revokes everything the user held, with back-channel logout', async () => {
    const userId = await newUser('password-reset');
    const holdings = await holdingsOf(app, userId);
    const rotated = await expectUsable(holdings);
    const before = logoutTokens.length;
    const set = await admin.call('PUT', `/admin/users/${userId}/password`, { body: { password: 'a brand new passphrase' } });
    expect(set.status).toBeLessThan(300);
    await expectRevoked(holdings, rotated);
    expect(logoutTokens).toHaveLength(before + 1);
    expect((await verifyLogoutToken(logoutTokens.at(-1)!)).payload).toMatchObject({ sub: userId });
    const event = await app.custos.db.selectFrom('event_outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'credential-changed', subject: userId });
  });
});

describe('disabling through the users service (custos users disable)', () => {
  it('revokes what the user holds too', async () => {
    const userId = await newUser('cli-disabled');
    const holdings = await holdingsOf(app, userId);
    const rotated = await expectUsable(holdings);
    const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
    expect((await users.disable({ id: userId }, { actor: 'cli', initiatingEntity: 'admin' })).changed).toBe(true);
    await expectRevoked(holdings, rotated);
    const event = await app.custos.db.selectFrom('event_outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'account-disabled', subject: userId });
    expect(event.payload).toMatchObject({ sessionIds: [holdings.sessionUid] });
  });
});

describe('revocation follows token exchange (RFC 7009 at /token/revocation)', () => {
  it('revoking the user token deactivates the resume tokens exchanged from it, chained ones too', async () => {
    const userId = await newUser('single-token');
    const holdings = await holdingsOf(app, userId);
    expect(await isActive(app, holdings.chainedResumeToken, { client: 'billing-worker' })).toBe(true);
    const revoked = await tokenEndpoint(app, '/token/revocation', { token: holdings.accessToken }, { basic: DEMO.webBff });
    expect(revoked.status).toBe(200);
    expect(await isActive(app, holdings.accessToken, { client: 'orders-api' })).toBe(false);
    expect(await isActive(app, holdings.resumeToken, { client: 'billing-worker' })).toBe(false);
    expect(await isActive(app, holdings.chainedResumeToken, { client: 'billing-worker' })).toBe(false);
    // The revocation is remembered until the longest-lived descendant expires, not only the 300 s
    // user token: otherwise the resume tokens would come back to life when it expires.
    const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number };
    const marker = await app.custos.db
      .selectFrom('oidc_model')
      .select('expires_at')
      .where('model', '=', 'RevokedAccessToken')
      .where('id', '=', claimsOf(holdings.accessToken).jti)
      .executeTakeFirstOrThrow();
    const longest = Math.max(claimsOf(holdings.resumeToken).exp, claimsOf(holdings.chainedResumeToken).exp);
    expect(longest).toBeGreaterThan(claimsOf(holdings.accessToken).exp);
    expect(new Date(marker.expires_at!).getTime()).toBeGreaterThanOrEqual(longest * 1000 - 1000);
    const again = await exchange(app, 'billing-worker', holdings.chainedResumeToken);
    expect([again.status, again.body.error]).toEqual([400, 'invalid_request']);
    // Only that token's descendants: the user's session and refresh token live on.
    expect((await refresh(app, holdings.refreshToken)).status).toBe(200);
  });

  it('revoking a resume token deactivates its descendants, not its parent', async () => {
    const userId = await newUser('middle-token');
    const holdings = await holdingsOf(app, userId);
    const revoked = await tokenEndpoint(app, '/token/revocation', { token: holdings.resumeToken }, { client: 'orders-api' });
    expect(revoked.status).toBe(200);
    expect(await isActive(app, holdings.resumeToken, { client: 'billing-worker' })).toBe(false);
    expect(await isActive(app, holdings.chainedResumeToken, { client: 'billing-worker' })).toBe(false);
    expect(await isActive(app, holdings.accessToken, { client: 'orders-api' })).toBe(true);
  });

  it('a resume token is judged by the user token at the root of its chain', async () => {
    const userId = await newUser('root-judged');
    const accessToken = await mintUserAccessToken(app, { sub: userId });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const resume = await exchange(app, 'orders-api', accessToken);
    expect(resume.status).toBe(200);
    // Simulate a revocation that landed between the exchange's check and its signing: the cut-off
    // is after the user token but before the resume token's own iat.
    const { iat } = JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { iat: number };
    await app.custos.db.insertInto('subject_revocation').values({ subject: userId, revoked_before: new Date(iat * 1000 + 500) }).execute();
    expect(await isActive(app, resume.body.access_token, { client: 'billing-worker' })).toBe(false);
  });
});
