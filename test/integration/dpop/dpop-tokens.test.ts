import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { loginForCode, newJar, REDIRECT_URI, VERIFIER } from '../../helpers/code-flow.js';
import { startResourceServer, type RunningResourceServer } from '../../fixtures/resource-server.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { clientSecretPostClient, configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { tokenEndpoint } from '../../helpers/user-tokens.js';

/** RFC 9449 DPoP at the token endpoint: oidc-provider's `features.dPoP` as Custos configures it. */

const OPTIONAL = ['dpop-optional-job', 'dpop-optional-job-secret-0123456789'] as [string, string];
const REQUIRED = ['dpop-required-job', 'dpop-required-job-secret-0123456789'] as [string, string];
const EXCHANGER = ['dpop-exchanger', 'dpop-exchanger-secret-0123456789'] as [string, string];
const SPA = 'dpop-spa';
const PASSWORD = 'dpop user password 0123';

let config: TempConfigDir;
let app: TestApp;
let rs: RunningResourceServer;

beforeAll(async () => {
  config = await configDirWithClients([
    await clientSecretPostClient(OPTIONAL),
    { ...(await clientSecretPostClient(REQUIRED)), dpop_bound_access_tokens: true },
    {
      client_id: SPA,
      client_name: 'Public client (a SPA) with DPoP',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      first_party: true,
      scope: 'openid orders orders:read',
      resources: [DEMO.ordersResource],
      default_resource: DEMO.ordersResource,
    },
    {
      ...(await clientSecretPostClient(EXCHANGER)),
      grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      serves: [DEMO.ordersResource],
    },
  ]);
  // The exchanger's policy accepts DPoP-bound subject tokens; orders-api's (the demo's) does not.
  const file = path.join(config.dir, 'token-exchange.json');
  const exchange = JSON.parse(await readFile(file, 'utf8')) as { token_exchange: { policies: Record<string, unknown>[] } };
  exchange.token_exchange.policies.push({
    client_id: EXCHANGER[0],
    scopes: { resume_orders: { lifetime: 3600 } },
    audiences: [DEMO.eventsResource],
    default_audience: DEMO.eventsResource,
    accept_dpop_bound_subject_tokens: true,
  });
  await writeFile(file, JSON.stringify(exchange, null, 2));
  app = await startTestApp({ configDir: config.dir });
  await createUserService({ db: app.custos.db, hasher: createPasswordHasher() }).create(
    { username: 'dpop-user', password: PASSWORD },
    { actor: 'test', initiatingEntity: 'admin' },
  );
  rs = await startResourceServer({
    issuer: app.issuer,
    audience: DEMO.ordersResource,
    caPem: app.custos.devPki!.caPem,
    serverCertPem: app.custos.devPki!.server.certPem,
    serverKeyPem: app.custos.devPki!.server.keyPem,
  });
});
afterAll(async () => {
  await rs?.close();
  await app?.stop();
  await config?.remove();
});

async function openidClient([clientId, secret]: [string, string]) {
  const agent = app.agent();
  const trusted = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch;
  return oidc.discovery(new URL(app.issuer), clientId, undefined, oidc.ClientSecretPost(secret), { [oidc.customFetch]: trusted as never });
}

describe('DPoP-bound tokens (RFC 9449)', () => {
  it('advertises ES256 and EdDSA proofs', async () => {
    const configuration = await openidClient(OPTIONAL);
    expect(configuration.serverMetadata().dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA']);
  });

  it('binds a client credentials token to the proof key: token_type DPoP, cnf.jkt, also in introspection', async () => {
    const configuration = await openidClient(OPTIONAL);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(configuration, keyPair);
    const response = await oidc.clientCredentialsGrant(configuration, { scope: 'orders:read' }, { DPoP });
    expect(response.token_type).toBe('dpop');
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
    const claims = decodeJwt(response.access_token);
    expect(claims.cnf).toEqual({ jkt });

    const introspected = await tokenEndpoint(app, '/token/introspection', { token: response.access_token }, { client: 'orders-api' });
    expect(introspected.status).toBe(200);
    expect(introspected.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt }, client_id: OPTIONAL[0] });
  });

  it('is accepted by a custos/verify resource server with a proof, and refused as a bearer token', async () => {
    const configuration = await openidClient(OPTIONAL);
    const DPoP = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    const { access_token: token } = await oidc.clientCredentialsGrant(configuration, { scope: 'orders:read' }, { DPoP });
    const orders = new URL(`${rs.url}/orders?page=1`);
    const ok = await oidc.fetchProtectedResource(configuration, token, orders, 'GET', undefined, undefined, { DPoP });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ client_id: OPTIONAL[0], scope: 'orders:read' });

    const asBearer = await undiciFetch(orders, { headers: { authorization: `Bearer ${token}` }, dispatcher: app.agent() });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP realm="orders", error="invalid_token", .*algs="ES256"$/);
    expect(await asBearer.json()).toEqual({ error: 'dpop_proof_required' });
  });

  it('leaves a token without a proof a Bearer token for a client that does not require DPoP', async () => {
    const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] });
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.access_token).cnf).toBeUndefined();
  });

  it('refuses a dpop_bound_access_tokens client without a proof, and binds it with one', async () => {
    const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: REQUIRED[0], client_secret: REQUIRED[1] });
    // oidc-provider's checkDpopRequired answers invalid_grant.
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_grant');

    const configuration = await openidClient(REQUIRED);
    const DPoP = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    const response = await oidc.clientCredentialsGrant(configuration, { scope: 'orders:read' }, { DPoP });
    expect(response.token_type).toBe('dpop');
    expect(decodeJwt(response.access_token).cnf).toHaveProperty('jkt');
  });

  it('answers a malformed proof with invalid_dpop_proof (JSON, 400)', async () => {
    const response = await undiciFetch(`${app.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: 'not.a.proof' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] }).toString(),
      dispatcher: app.agent(),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_dpop_proof');
  });
});

describe('token exchange of a DPoP-bound subject token', () => {
  async function dpopBoundUserToken() {
    const { publicKey } = await generateKeyPair('ES256');
    const jkt = await calculateJwkThumbprint(await exportJWK(publicKey));
    return { jkt, token: await mintUserAccessToken(app, { sub: 'alice', jkt }) };
  }

  it('is refused by default (invalid_request)', async () => {
    const { token } = await dpopBoundUserToken();
    expect(decodeJwt(token).cnf).toHaveProperty('jkt');
    const { status, body } = await app.token(
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        client_id: 'orders-api',
        subject_token: token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        event_payload_hash: eventPayloadHash({ a: 1 }),
      },
      { agent: app.clientAgent('orders-api') },
    );
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toMatch(/DPoP-bound/);
  });

  it('is accepted for a policy with accept_dpop_bound_subject_tokens, and the record keeps the jkt', async () => {
    const { jkt, token } = await dpopBoundUserToken();
    const { status, body } = await app.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: EXCHANGER[0],
      client_secret: EXCHANGER[1],
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      event_payload_hash: eventPayloadHash({ a: 2 }),
    });
    expect([status, body.error]).toEqual([200, undefined]);
    const resume = decodeJwt(body.access_token);
    expect(resume).toMatchObject({ sub: 'alice', scope: 'resume_orders', act: { sub: EXCHANGER[0] } });
    // Bound like any resume token of this (non-mTLS) client: not to the user's client's key.
    expect(resume.cnf).toBeUndefined();

    const db = createDb(app.databaseUrl);
    try {
      const row = await db.selectFrom('token_exchange').select(['subject_jkt', 'client_id']).where('jti', '=', String(resume.jti)).executeTakeFirstOrThrow();
      expect(row).toEqual({ subject_jkt: jkt, client_id: EXCHANGER[0] });
    } finally {
      await db.destroy();
    }
  });

  it('checks a proof the exchanging client sends, and still answers a Bearer resume token (carried with the event)', async () => {
    const { token } = await dpopBoundUserToken();
    const form = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: EXCHANGER[0],
      client_secret: EXCHANGER[1],
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      event_payload_hash: eventPayloadHash({ a: 3 }),
    };
    const key = await proofKey();
    const wrongUrl = await postToken(form, { dpop: await tokenProof(key, { htu: `${app.issuer}/token/introspection` }) });
    expect([wrongUrl.status, wrongUrl.body.error]).toEqual([400, 'invalid_dpop_proof']);
    // The happy path through openid-client's DPoP support (its generic grant request).
    const configuration = await openidClient(EXCHANGER);
    const DPoP = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    const { grant_type: grantType, client_id: _id, client_secret: _secret, ...exchange } = form;
    const viaClient = await oidc.genericGrantRequest(configuration, grantType, exchange, { DPoP });
    expect(viaClient.token_type).toBe('bearer');
    expect(decodeJwt(viaClient.access_token).cnf).toBeUndefined();

    const proof = await tokenProof(key);
    const proved = await postToken({ ...form, event_payload_hash: eventPayloadHash({ a: 5 }) }, { dpop: proof });
    expect([proved.status, proved.body.token_type]).toEqual([200, 'Bearer']);
    const replayed = await postToken({ ...form, event_payload_hash: eventPayloadHash({ a: 4 }) }, { dpop: proof });
    expect([replayed.status, replayed.body.error]).toEqual([400, 'invalid_grant']);
  });
});

/** A key for hand-made proofs (jose SignJWT), as a client without openid-client would make them. */
async function proofKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

function tokenProof(key: { privateKey: CryptoKey; jwk: JWK }, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: `${app.issuer}/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey);
}

async function postToken(form: Record<string, string>, options: { dpop?: string; basic?: [string, string]; agent?: ReturnType<TestApp['agent']> } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (options.dpop) headers.dpop = options.dpop;
  if (options.basic) headers.authorization = `Basic ${Buffer.from(options.basic.join(':')).toString('base64')}`;
  const response = await undiciFetch(`${app.issuer}/token`, {
    method: 'POST',
    headers,
    body: new URLSearchParams(form).toString(),
    dispatcher: options.agent ?? app.agent(),
  });
  return { status: response.status, nonce: response.headers.get('dpop-nonce'), body: (await response.json()) as Record<string, any> };
}

describe('DPoP at the token endpoint with hand-made proofs', () => {
  it('answers a stale proof with use_dpop_nonce and a DPoP-Nonce, and accepts the nonce', async () => {
    const key = await proofKey();
    const form = { grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] };
    const stale = await postToken(form, { dpop: await tokenProof(key, { iat: Math.floor(Date.now() / 1000) - 600 }) });
    expect(stale.status).toBe(400);
    expect(stale.body.error).toBe('use_dpop_nonce');
    expect(stale.nonce).toMatch(/^[A-Za-z0-9_-]+$/);
    const retried = await postToken(form, { dpop: await tokenProof(key, { nonce: stale.nonce }) });
    expect([retried.status, retried.body.error]).toEqual([200, undefined]);
    expect(retried.body.token_type).toBe('DPoP');
    expect(decodeJwt(retried.body.access_token as string).cnf).toEqual({ jkt: key.jkt });
  });

  it('accepts one proof once under concurrency: of parallel requests with it, exactly one gets a token', async () => {
    const form = { grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] };
    for (let attempt = 0; attempt < 3; attempt++) {
      const proof = await tokenProof(await proofKey());
      const agents = Array.from({ length: 8 }, () => app.agent());
      const answers = await Promise.all(agents.map((agent) => postToken(form, { dpop: proof, agent })));
      expect(answers.map((answer) => answer.status).sort()).toEqual([200, 400, 400, 400, 400, 400, 400, 400]);
      expect(answers.filter((answer) => answer.status === 400).every((answer) => answer.body.error === 'invalid_grant')).toBe(true);
    }
  });

  it('refuses a proof for another method or with a nonce the server never gave', async () => {
    const key = await proofKey();
    const form = { grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] };
    const otherMethod = await postToken(form, { dpop: await tokenProof(key, { htm: 'GET' }) });
    expect([otherMethod.status, otherMethod.body.error]).toEqual([400, 'invalid_dpop_proof']);
    const forgedNonce = await postToken(form, { dpop: await tokenProof(key, { nonce: 'not-a-nonce-of-this-server' }) });
    expect([forgedNonce.status, forgedNonce.body.error]).toEqual([400, 'use_dpop_nonce']);
    expect(forgedNonce.nonce).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('refuses a replayed proof', async () => {
    const key = await proofKey();
    const form = { grant_type: 'client_credentials', client_id: OPTIONAL[0], client_secret: OPTIONAL[1] };
    const once = await tokenProof(key);
    expect((await postToken(form, { dpop: once })).status).toBe(200);
    const again = await postToken(form, { dpop: once });
    // oidc-provider's replay detection (checkDpopReplay) answers invalid_grant.
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    // Proofs never reach the logs.
    expect(app.logs.join('\n')).not.toContain(once.split('.')[2]);
  });

  it('refuses two bindings at once: an mTLS client with certificate-bound tokens and a proof', async () => {
    const { status, body } = await postToken(
      { grant_type: 'client_credentials', client_id: 'orders-api' },
      { dpop: await tokenProof(await proofKey()), agent: app.clientAgent('orders-api') },
    );
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it('binds the authorization code grant of a confidential client', async () => {
    const code = await loginForCode(app, newJar(), 'dpop-user', PASSWORD);
    const key = await proofKey();
    const { status, body } = await postToken(
      { grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI },
      { dpop: await tokenProof(key), basic: DEMO.webBff },
    );
    expect([status, body.error]).toEqual([200, undefined]);
    expect(body.token_type).toBe('DPoP');
    expect(decodeJwt(body.access_token as string).cnf).toEqual({ jkt: key.jkt });
    // The refresh grant binds the new access token to the proof of that request.
    const refreshed = await postToken({ grant_type: 'refresh_token', refresh_token: body.refresh_token as string }, { dpop: await tokenProof(key), basic: DEMO.webBff });
    expect([refreshed.status, refreshed.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(refreshed.body.access_token as string).cnf).toEqual({ jkt: key.jkt });
  });

  it('gives a public client a refresh token only with a proof, bound to that key', async () => {
    const unbound = await loginForCode(app, newJar(), 'dpop-user', PASSWORD, 'openid orders orders:read', SPA);
    const bearer = await postToken({ grant_type: 'authorization_code', client_id: SPA, code: unbound, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI });
    expect([bearer.status, bearer.body.token_type, bearer.body.refresh_token]).toEqual([200, 'Bearer', undefined]);

    const key = await proofKey();
    const code = await loginForCode(app, newJar(), 'dpop-user', PASSWORD, 'openid orders orders:read', SPA);
    const issued = await postToken(
      { grant_type: 'authorization_code', client_id: SPA, code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI },
      { dpop: await tokenProof(key) },
    );
    expect([issued.status, issued.body.token_type]).toEqual([200, 'DPoP']);
    const refreshToken = issued.body.refresh_token as string;
    expect(refreshToken).toBeTypeOf('string');

    const refresh = { grant_type: 'refresh_token', client_id: SPA, refresh_token: refreshToken };
    const withoutProof = await postToken(refresh);
    expect([withoutProof.status, withoutProof.body.error]).toEqual([400, 'invalid_grant']);
    const otherKey = await postToken(refresh, { dpop: await tokenProof(await proofKey()) });
    expect([otherKey.status, otherKey.body.error]).toEqual([400, 'invalid_grant']);
    const sameKey = await postToken(refresh, { dpop: await tokenProof(key) });
    expect([sameKey.status, sameKey.body.error, sameKey.body.token_type]).toEqual([200, undefined, 'DPoP']);
    expect(decodeJwt(sameKey.body.access_token as string).cnf).toEqual({ jkt: key.jkt });
  });
});
