import { X509Certificate } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExchangesBySubject } from '../../../src/grants/token-exchange/exchange-record.repository.js';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { revokeSubjectTokens } from '../../../src/revocation/token-revocation.repository.js';
import { createAccessTokenVerifier, eventPayloadHash, verifyEventToken, VerifyError } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { tokenEndpoint } from '../../helpers/user-tokens.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const payload = { orderId: 'o-1001', amount: 4200, currency: 'EUR', lines: [{ sku: 'A', qty: 2 }] };

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

/** Flips one character in the middle of the signature (the last one may only carry padding bits). */
function tamper(jwt: string): string {
  const at = jwt.length - 20;
  return `${jwt.slice(0, at)}${jwt[at] === 'A' ? 'B' : 'A'}${jwt.slice(at + 1)}`;
}

function exchange(form: Record<string, string | string[]>, client = 'orders-api') {
  return app.token({ grant_type: GRANT, client_id: client, subject_token_type: AT, ...form }, { agent: app.clientAgent(client) });
}

describe('RFC 8693 token exchange', () => {
  it('turns a user token into a resume token bound to one event payload', async () => {
    const subject = await mintUserAccessToken(app, { sub: 'alice', scope: 'orders orders:read' });
    const hash = eventPayloadHash(payload);
    const { status, body } = await exchange({ subject_token: subject, scope: 'resume_orders', event_payload_hash: hash });
    expect(status).toBe(200);
    expect(body).toMatchObject({ issued_token_type: AT, token_type: 'Bearer', scope: 'resume_orders', expires_in: 604800 });
    expect(body.refresh_token).toBeUndefined();

    const jwks = publicJwks(app.custos.keys());
    const { payload: claims, protectedHeader } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
      issuer: app.issuer,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(claims).toMatchObject({
      sub: 'alice',
      act: { sub: 'orders-api' },
      scope: 'resume_orders',
      event_payload_hash: hash,
      aud: DEMO.eventsResource,
      client_id: 'orders-api',
    });
    expect(claims.cnf).toBeUndefined();
    expect(claims.exp! - claims.iat!).toBe(604800);
    expect(claims.jti).not.toBe(decodeJwt(subject).jti);

    // The consumer verifies the token and the exact payload (key order is not a change under JCS).
    const reordered = { lines: [{ qty: 2, sku: 'A' }], currency: 'EUR', amount: 4200, orderId: 'o-1001' };
    const verified = await verifyEventToken(body.access_token, reordered, {
      issuer: app.issuer,
      jwks,
      audience: DEMO.eventsResource,
      requiredScope: 'resume_orders',
    });
    expect(verified.sub).toBe('alice');
    await expect(
      verifyEventToken(body.access_token, { ...payload, amount: 4201 }, { issuer: app.issuer, jwks, audience: DEMO.eventsResource }),
    ).rejects.toMatchObject({ code: 'payload_mismatch' });

    // ...and it is useless on an HTTP resource server.
    const verifier = createAccessTokenVerifier({ issuer: app.issuer, jwks, audience: DEMO.eventsResource, requireBinding: false });
    const error = await verifier.verify(body.access_token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe('resume_only_token');

    // Recorded for audit.
    const [record] = await listExchangesBySubject(app.custos.db, 'alice');
    expect(record).toMatchObject({
      jti: claims.jti,
      client_id: 'orders-api',
      scopes: ['resume_orders'],
      audiences: [DEMO.eventsResource],
      event_payload_hash: hash,
      actor_chain: { sub: 'orders-api' },
    });
  });

  it('supports a chained exchange by a consumer for a subset, not a superset', async () => {
    const subject = await mintUserAccessToken(app, { sub: 'bob' });
    const first = await exchange({ subject_token: subject, event_payload_hash: eventPayloadHash(payload) });
    expect(first.status).toBe(200);
    expect(first.body.scope).toBe('resume_orders');
    const nextPayload = { invoiceFor: 'o-1001' };
    const chained = await exchange(
      { subject_token: first.body.access_token, scope: 'resume_orders', event_payload_hash: eventPayloadHash(nextPayload) },
      'billing-worker',
    );
    expect(chained.status).toBe(200);
    const claims = decodeJwt(chained.body.access_token);
    expect(claims).toMatchObject({ sub: 'bob', act: { sub: 'billing-worker', act: { sub: 'orders-api' } }, scope: 'resume_orders' });
    expect(claims.exp).toBeLessThanOrEqual(decodeJwt(first.body.access_token).exp!);

    const superset = await exchange(
      { subject_token: first.body.access_token, scope: 'resume_orders resume_billing', event_payload_hash: eventPayloadHash(nextPayload) },
      'billing-worker',
    );
    expect(superset.status).toBe(400);
    expect(superset.body.error).toBe('invalid_scope');

    // orders-api does not serve the events audience: it cannot re-exchange the resume token.
    const foreign = await exchange({ subject_token: first.body.access_token, event_payload_hash: eventPayloadHash(nextPayload) });
    expect(foreign.body.error).toBe('invalid_request');
  });

  it('refuses a subject token exchanged before once it is revoked, or once its user is cut off', async () => {
    const hash = eventPayloadHash(payload);
    // Exchanged twice (the second time its verification is remembered), then revoked (RFC 7009).
    const revokedLater = await mintUserAccessToken(app, { sub: 'dora' });
    for (let i = 0; i < 2; i++) expect((await exchange({ subject_token: revokedLater, event_payload_hash: hash })).status).toBe(200);
    expect((await tokenEndpoint(app, '/token/revocation', { token: revokedLater }, { basic: DEMO.webBff })).status).toBe(200);
    const refused = await exchange({ subject_token: revokedLater, event_payload_hash: hash });
    expect([refused.status, refused.body.error, refused.body.error_description]).toEqual([400, 'invalid_request', 'subject_token was revoked']);

    // Exchanged, then every token of its user revoked (the administrator's cut-off).
    const cutOff = await mintUserAccessToken(app, { sub: 'erin' });
    expect((await exchange({ subject_token: cutOff, event_payload_hash: hash })).status).toBe(200);
    await revokeSubjectTokens(app.custos.db, 'erin');
    const refusedUser = await exchange({ subject_token: cutOff, event_payload_hash: hash });
    expect([refusedUser.status, refusedUser.body.error_description]).toEqual([400, 'subject_token was revoked']);
    // Refused exchanges record nothing.
    expect(await listExchangesBySubject(app.custos.db, 'dora')).toHaveLength(2);
    expect(await listExchangesBySubject(app.custos.db, 'erin')).toHaveLength(1);
  });

  it('answers many exchanges at once, each recorded, each judged on its own subject token', async () => {
    const hash = eventPayloadHash(payload);
    const revoked = await mintUserAccessToken(app, { sub: 'frank' });
    await revokeSubjectTokens(app.custos.db, 'frank');
    const subjects = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 6 === 5 ? revoked : mintUserAccessToken(app, { sub: `crowd-${i}` }))));
    const answers = await Promise.all(subjects.map((subject) => exchange({ subject_token: subject, event_payload_hash: hash })));
    for (const [i, answer] of answers.entries()) {
      if (i % 6 === 5) expect([answer.status, answer.body.error_description]).toEqual([400, 'subject_token was revoked']);
      else {
        expect(answer.status).toBe(200);
        const [stored] = await listExchangesBySubject(app.custos.db, `crowd-${i}`);
        expect(stored?.jti).toBe(decodeJwt(answer.body.access_token).jti);
      }
    }
    expect(await listExchangesBySubject(app.custos.db, 'frank')).toEqual([]);
  });

  describe('errors (RFC 8693 §2.2.2)', () => {
    const hash = eventPayloadHash(payload);

    it('bad, expired, foreign or machine subject tokens are invalid_request', async () => {
      const cases: Array<[string, string]> = [
        ['garbage', 'not-a-token'],
        ['tampered', tamper(await mintUserAccessToken(app))],
        ['expired', await mintUserAccessToken(app, { ttl: 1 })],
        ['other API', await mintUserAccessToken(app, { clientId: 'admin-cli', resource: DEMO.adminResource, scope: 'admin' })],
      ];
      await new Promise((resolve) => setTimeout(resolve, 2100));
      for (const [name, token] of cases) {
        const { status, body } = await exchange({ subject_token: token, scope: 'resume_orders', event_payload_hash: hash });
        expect([name, status, body.error]).toEqual([name, 400, 'invalid_request']);
      }
      const machine = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
      const { body } = await exchange({ subject_token: machine.body.access_token, scope: 'resume_orders', event_payload_hash: hash });
      expect(body.error).toBe('invalid_request');
    });

    it('missing or malformed event_payload_hash is invalid_request', async () => {
      const subject = await mintUserAccessToken(app);
      for (const form of [{}, { event_payload_hash: 'abc' }, { event_payload_hash: `${hash}=` }] as Record<string, string>[]) {
        const { status, body } = await exchange({ subject_token: subject, scope: 'resume_orders', ...form });
        expect(status).toBe(400);
        expect(body.error).toBe('invalid_request');
      }
    });

    it('audience not allowed is invalid_target', async () => {
      const subject = await mintUserAccessToken(app);
      for (const target of [{ audience: 'https://evil.example/' }, { resource: DEMO.adminResource }] as Record<string, string>[]) {
        const { status, body } = await exchange({ subject_token: subject, scope: 'resume_orders', event_payload_hash: hash, ...target });
        expect([status, body.error]).toEqual([400, 'invalid_target']);
      }
    });

    it('non-resume scopes and resume scopes without their base scope are invalid_scope', async () => {
      const readOnly = await mintUserAccessToken(app, { scope: 'orders:read' });
      const noBase = await exchange({ subject_token: readOnly, scope: 'resume_orders', event_payload_hash: hash });
      expect([noBase.status, noBase.body.error]).toEqual([400, 'invalid_scope']);
      const full = await mintUserAccessToken(app);
      for (const scope of ['orders', 'resume_orders orders:read', 'resume_billing', 'resume_']) {
        const { status, body } = await exchange({ subject_token: full, scope, event_payload_hash: hash });
        expect([scope, status, body.error]).toEqual([scope, 400, 'invalid_scope']);
      }
    });

    it('clients without the grant or without a policy are unauthorized_client', async () => {
      const subject = await mintUserAccessToken(app);
      const noGrant = await app.token(
        { grant_type: GRANT, subject_token_type: AT, subject_token: subject, event_payload_hash: hash },
        { basic: DEMO.reportingJob },
      );
      expect([noGrant.status, noGrant.body.error]).toEqual([400, 'unauthorized_client']);
      const noPolicy = await exchange({ subject_token: subject, event_payload_hash: hash }, 'admin-cli');
      expect(noPolicy.body.error).toBe('unauthorized_client');
    });

    it('rejects actor tokens, unknown token types and duplicate parameters', async () => {
      const subject = await mintUserAccessToken(app);
      const cases = [
        { actor_token: subject, actor_token_type: AT },
        { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
        { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
        { scope: ['resume_orders', 'resume_orders'] },
      ] as Record<string, string | string[]>[];
      for (const extra of cases) {
        const { status, body } = await exchange({ subject_token: subject, event_payload_hash: hash, ...extra });
        expect([status, body.error]).toEqual([400, 'invalid_request']);
      }
    });
  });

  it('the client must authenticate with its own certificate', async () => {
    const subject = await mintUserAccessToken(app);
    const response = await request(`${app.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: GRANT, client_id: 'orders-api', subject_token: subject, subject_token_type: AT, event_payload_hash: eventPayloadHash(payload) }).toString(),
      dispatcher: app.clientAgent('billing-worker'),
    });
    expect(response.statusCode).toBe(401);
    expect(((await response.body.json()) as any).error).toBe('invalid_client');
    expect(new X509Certificate(app.custos.devPki!.clients['orders-api']!.certPem).subject).toContain('orders-api');
  });
});
