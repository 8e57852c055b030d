/**
 * Issue 16 §1 and §2: logout, RFC 7009 revocation of a refresh token, refresh-token reuse and
 * authorization-code replay each end the grant in one transaction, cut off the JWT access tokens
 * already issued from it and every resume token exchanged from them (introspection and token
 * exchange refuse them), and record one CAEP `session-revoked` event naming the session (`sid`);
 * codes are redeemed and refresh tokens rotated at most once under real parallel requests.
 */
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSecurityEventClaims, createSetSigner } from '../../../src/events/security-event-token.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { createAccessTokenVerifier, createRevocationState, createSecurityEventVerifier } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { logout, loginForCode, newJar, redeemCode } from '../../helpers/code-flow.js';
import { exchange, isActive, refresh, tokenEndpoint } from '../../helpers/user-tokens.js';

let app: TestApp;
let userId: string;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp();
  const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  const by = { actor: 'cli', initiatingEntity: 'admin' as const };
  await users.createRole({ name: 'orders-reader' }, by);
  userId = (await users.create({ username: 'bob', password: PASSWORD, roles: ['orders-reader'] }, by)).id;
});
afterAll(async () => {
  await app?.stop();
});

interface Held {
  accessToken: string;
  refreshToken: string;
  resumeToken: string;
  chainedResumeToken: string;
  sid: string;
}

/** A real login and code redemption, with the access token exchanged by orders-api and that by billing-worker. */
async function signInAndExchange(jar = newJar(), scope?: string): Promise<Held & { jar: ReturnType<typeof newJar> }> {
  const tokens = await redeemCode(app, await loginForCode(app, jar, 'bob', PASSWORD, scope));
  expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
  const resume = await exchange(app, 'orders-api', tokens.body.access_token);
  expect(resume.status, JSON.stringify(resume.body)).toBe(200);
  const chained = await exchange(app, 'billing-worker', resume.body.access_token, { order: 1, step: 2 });
  expect(chained.status, JSON.stringify(chained.body)).toBe(200);
  const sid = decodeJwt(tokens.body.access_token).sid as string;
  expect(sid).toEqual(expect.any(String));
  // The resume tokens belong to the same session.
  expect(decodeJwt(resume.body.access_token).sid).toBe(sid);
  expect(decodeJwt(chained.body.access_token).sid).toBe(sid);
  return { jar, accessToken: tokens.body.access_token, refreshToken: tokens.body.refresh_token, resumeToken: resume.body.access_token, chainedResumeToken: chained.body.access_token, sid };
}

async function expectAlive(held: Held): Promise<void> {
  expect(await isActive(app, held.accessToken, { client: 'orders-api' })).toBe(true);
  expect(await isActive(app, held.resumeToken, { client: 'billing-worker' })).toBe(true);
  expect(await isActive(app, held.chainedResumeToken, { client: 'billing-worker' })).toBe(true);
}

/** Everything issued from the grant is dead: introspection, refresh and token exchange refuse it. */
async function expectDead(held: Pick<Held, 'accessToken' | 'resumeToken' | 'chainedResumeToken'>, refreshTokens: string[]): Promise<void> {
  expect(await isActive(app, held.accessToken, { client: 'orders-api' })).toBe(false);
  expect(await isActive(app, held.resumeToken, { client: 'billing-worker' })).toBe(false);
  expect(await isActive(app, held.chainedResumeToken, { client: 'billing-worker' })).toBe(false);
  for (const token of refreshTokens) {
    const refreshed = await refresh(app, token);
    expect([refreshed.status, refreshed.body.error]).toEqual([400, 'invalid_grant']);
  }
  for (const [client, token] of [
    ['orders-api', held.accessToken],
    ['billing-worker', held.resumeToken],
    ['billing-worker', held.chainedResumeToken],
  ] as const) {
    const again = await exchange(app, client, token);
    expect([again.status, again.body.error]).toEqual([400, 'invalid_request']);
  }
}

/** The outbox events about session `sid`. */
async function eventsFor(sid: string) {
  const rows = await app.custos.db.selectFrom('event_outbox').select(['type', 'subject', 'payload', 'occurred_at', 'event_id', 'txid']).where('type', '=', 'session-revoked').execute();
  return rows.filter((row) => (row.payload as { sid?: string }).sid === sid);
}

async function expectOneEvent(sid: string, reason: string, initiatingEntity: string) {
  const events = await eventsFor(sid);
  expect(events).toHaveLength(1);
  expect(events[0]!.subject).toBe(userId);
  expect(events[0]!.payload).toMatchObject({ type: 'session-revoked', userId, sid, sessionIds: [sid], initiatingEntity, reasonAdmin: reason });
  const audit = await app.custos.db.selectFrom('audit_log').select(['details', 'target']).where('action', '=', 'grant.revoke').execute();
  expect(audit.filter((row) => (row.details as { sessions?: string[] }).sessions?.includes(sid))).toEqual([
    expect.objectContaining({ target: `user:${userId}`, details: expect.objectContaining({ reason, client_id: 'web-bff' }) }),
  ]);
  return events[0]!;
}

describe('every path that ends a grant kills its tokens and tells consumers', () => {
  it('RP-initiated logout confirmed by the user; an offline_access grant outlives it (OIDC Core §11)', async () => {
    const held = await signInAndExchange();
    await expectAlive(held);
    // An identity-only (opaque) access token for /me, from a refresh of the same grant.
    const identity = await app.token({ grant_type: 'refresh_token', refresh_token: held.refreshToken, scope: 'openid' }, { basic: DEMO.webBff });
    expect(identity.status, JSON.stringify(identity.body)).toBe(200);
    const me = () => request(`${app.issuer}/me`, { headers: { authorization: `Bearer ${identity.body.access_token}` }, dispatcher: app.agent() });
    expect((await me()).statusCode).toBe(200);
    // A second session of the same user with offline_access: logout leaves its grant alone.
    const offline = await signInAndExchange(newJar(), 'openid offline_access orders orders:read');
    await logout(app, held.jar);
    await logout(app, offline.jar);
    await expectDead(held, [identity.body.refresh_token]);
    expect((await me()).statusCode).toBe(401);
    await expectOneEvent(held.sid, 'logout', 'user');
    await expectAlive(offline);
    const refreshed = await refresh(app, offline.refreshToken);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(await eventsFor(offline.sid)).toHaveLength(0);
  });

  it('RFC 7009 revocation of the refresh token ends the grant', async () => {
    const held = await signInAndExchange();
    const revoked = await tokenEndpoint(app, '/token/revocation', { token: held.refreshToken, token_type_hint: 'refresh_token' }, { basic: DEMO.webBff });
    expect(revoked.status).toBe(200);
    await expectDead(held, [held.refreshToken]);
    await expectOneEvent(held.sid, 'token_revocation', 'user');
  });

  it('RFC 7009 revocation of an access token ends that token and its resume tokens, not the grant', async () => {
    const held = await signInAndExchange();
    const revoked = await tokenEndpoint(app, '/token/revocation', { token: held.accessToken }, { basic: DEMO.webBff });
    expect(revoked.status).toBe(200);
    expect(await isActive(app, held.accessToken, { client: 'orders-api' })).toBe(false);
    expect(await isActive(app, held.resumeToken, { client: 'billing-worker' })).toBe(false);
    const refreshed = await refresh(app, held.refreshToken);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(await isActive(app, refreshed.body.access_token, { client: 'orders-api' })).toBe(true);
    expect(await eventsFor(held.sid)).toHaveLength(0);
  });

  it('refresh-token reuse: the grant’s access, refresh and resume tokens die; the event says policy, refresh_token_reuse', async () => {
    const held = await signInAndExchange();
    const rotated = await refresh(app, held.refreshToken);
    expect(rotated.status).toBe(200);
    const reused = await refresh(app, held.refreshToken);
    expect([reused.status, reused.body.error]).toEqual([400, 'invalid_grant']);
    await expectDead(held, [rotated.body.refresh_token]);
    expect(await isActive(app, rotated.body.access_token, { client: 'orders-api' })).toBe(false);
    await expectOneEvent(held.sid, 'refresh_token_reuse', 'policy');
  });

  it('authorization-code replay revokes every token issued from that code (RFC 6749 §4.1.2)', async () => {
    const jar = newJar();
    const code = await loginForCode(app, jar, 'bob', PASSWORD);
    const first = await redeemCode(app, code);
    expect(first.status).toBe(200);
    const resume = await exchange(app, 'orders-api', first.body.access_token);
    expect(resume.status).toBe(200);
    const replay = await redeemCode(app, code);
    expect([replay.status, replay.body.error]).toEqual([400, 'invalid_grant']);
    const sid = decodeJwt(first.body.access_token).sid as string;
    expect(await isActive(app, first.body.access_token, { client: 'orders-api' })).toBe(false);
    expect(await isActive(app, resume.body.access_token, { client: 'billing-worker' })).toBe(false);
    const refreshed = await refresh(app, first.body.refresh_token);
    expect([refreshed.status, refreshed.body.error]).toEqual([400, 'invalid_grant']);
    await expectOneEvent(sid, 'code_replay', 'policy');
  });

  it('a consumer fed the event refuses the session’s tokens and keeps accepting the user’s other sessions', async () => {
    const held = await signInAndExchange();
    const other = await signInAndExchange();
    await logout(app, held.jar);
    const [row] = await eventsFor(held.sid);
    const sign = createSetSigner(() => app.custos.keys().current);
    const set = await sign(
      buildSecurityEventClaims(
        { eventId: row!.event_id, txid: String(row!.txid), occurredAt: new Date(row!.occurred_at), event: row!.payload as never },
        { issuer: app.issuer, audience: 'urn:test:consumer' },
      ),
    );
    const jwks = publicJwks(app.custos.keys());
    const event = await createSecurityEventVerifier({ issuer: app.issuer, audience: 'urn:test:consumer', jwks }).verify(set);
    expect(event).toMatchObject({ kind: 'session-revoked', subject: userId, sessionId: held.sid });
    const state = createRevocationState();
    expect(state.apply(event)).toBe('applied');
    const verifier = createAccessTokenVerifier({ issuer: app.issuer, audience: DEMO.ordersResource, jwks, requireBinding: false, revocations: state });
    await expect(verifier.verify(held.accessToken)).rejects.toMatchObject({ code: 'session_revoked', status: 401 });
    await expect(verifier.verify(other.accessToken)).resolves.toMatchObject({ sub: userId, sid: other.sid });
  });
});

/** Sends `count` copies of a request at once. */
function burst<T>(count: number, send: () => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, send));
}

describe('once means once under concurrency (8 requests in flight, several rounds)', () => {
  it('an authorization code is redeemed at most once; every loser is a replay that ends the grant', async () => {
    for (let round = 0; round < 4; round++) {
      const code = await loginForCode(app, newJar(), 'bob', PASSWORD);
      const answers = await burst(8, () => redeemCode(app, code));
      const won = answers.filter((answer) => answer.status === 200);
      expect(won, `round ${round}: ${answers.map((a) => a.status)}`).toHaveLength(1);
      for (const lost of answers.filter((answer) => answer.status !== 200)) expect([lost.status, lost.body.error]).toEqual([400, 'invalid_grant']);
      // The winner's tokens are cut off by the replays; one event for the grant.
      const sid = decodeJwt(won[0]!.body.access_token).sid as string;
      expect(await isActive(app, won[0]!.body.access_token, { client: 'orders-api' })).toBe(false);
      const refreshed = await refresh(app, won[0]!.body.refresh_token);
      expect([refreshed.status, refreshed.body.error]).toEqual([400, 'invalid_grant']);
      await expectOneEvent(sid, 'code_replay', 'policy');
    }
  });

  it('a refresh token rotates at most once; the losers end the grant', async () => {
    for (let round = 0; round < 4; round++) {
      const held = await signInAndExchange();
      const answers = await burst(8, () => refresh(app, held.refreshToken));
      const won = answers.filter((answer) => answer.status === 200);
      expect(won.length, `round ${round}: ${answers.map((a) => a.status)}`).toBeLessThanOrEqual(1);
      expect(answers.filter((answer) => answer.status !== 200).every((answer) => answer.body.error === 'invalid_grant')).toBe(true);
      await expectDead(held, won.map((answer) => answer.body.refresh_token));
      for (const answer of won) expect(await isActive(app, answer.body.access_token, { client: 'orders-api' })).toBe(false);
      await expectOneEvent(held.sid, 'refresh_token_reuse', 'policy');
    }
  });
});
