import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createAccessTokenVerifier,
  createMemoryDpopReplayStore,
  jwkThumbprint,
  VerifyError,
  type AccessTokenVerifier,
  type DpopRequest,
} from '../../../src/verify/index.js';
import { accessClaims, AUDIENCE, ISSUER, jwksOf, makeIssuerKey, nowSec, signToken, type IssuerKey } from './fixtures.js';

/** RFC 9449 §4.3 / §7.1 at the resource server, with hand-made proofs. */

const URL_ORDERS = 'https://orders.api.test/orders';

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
  alg: 'ES256' | 'EdDSA';
}

async function proofKey(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk), alg };
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

async function proof(
  key: ProofKey,
  token: string,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload: Record<string, unknown> = { htm: 'GET', htu: URL_ORDERS, iat: nowSec(), jti: randomUUID(), ath: ath(token), ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header } as { alg: string }).sign(key.privateKey);
}

const request = (dpop: string | string[] | undefined, overrides: Partial<DpopRequest> = {}): { dpop: DpopRequest } => ({
  dpop: { proof: dpop, method: 'GET', url: URL_ORDERS, ...overrides },
});

async function expectCode(promise: Promise<unknown>, code: string): Promise<VerifyError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(VerifyError);
  expect((error as VerifyError).code).toBe(code);
  return error as VerifyError;
}

let issuer: IssuerKey;
let holder: ProofKey;
let token: string;
let verifier: AccessTokenVerifier;

beforeAll(async () => {
  issuer = await makeIssuerKey();
  holder = await proofKey();
  token = await signToken(issuer, accessClaims({ cnf: { jkt: holder.jkt } }));
  verifier = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: jwksOf(issuer) });
});

describe('createAccessTokenVerifier: DPoP-bound tokens (RFC 9449 §7.1)', () => {
  it('accepts a DPoP-bound token with a valid proof (query and fragment of the URL ignored)', async () => {
    const claims = await verifier.verify(token, request(await proof(holder, token)));
    expect(claims.cnf).toEqual({ jkt: holder.jkt });
    const withQuery = await proof(holder, token, { htu: `${URL_ORDERS}?page=2` });
    await expect(verifier.verify(token, request(withQuery, { url: `${URL_ORDERS}?page=3#x` }))).resolves.toMatchObject({ sub: 'user-123' });
  });

  it('computes the RFC 7638 thumbprint like jose', () => {
    expect(jwkThumbprint(holder.jwk as Record<string, unknown>)).toBe(holder.jkt);
  });

  it('refuses a DPoP-bound token without a proof: dpop_proof_required with a DPoP challenge', async () => {
    for (const options of [undefined, request(undefined), request('')]) {
      const error = await expectCode(verifier.verify(token, options), 'dpop_proof_required');
      expect(error.status).toBe(401);
      expect(error.wwwAuthenticate()).toMatch(/^DPoP error="invalid_token", error_description="[^"]+", algs="ES256"$/);
    }
  });

  it('refuses a proof for another URL, another method or another token (ath)', async () => {
    await expectCode(verifier.verify(token, request(await proof(holder, token, { htu: 'https://orders.api.test/admin' }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, { htu: 'https://evil.test/orders' }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, { htm: 'POST' }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token), { method: 'DELETE' })), 'invalid_dpop_proof');
    const other = await signToken(issuer, accessClaims({ cnf: { jkt: holder.jkt } }));
    await expectCode(verifier.verify(token, request(await proof(holder, other))), 'invalid_dpop_proof');
    const error = await expectCode(verifier.verify(token, request(await proof(holder, token, { ath: undefined }))), 'invalid_dpop_proof');
    expect(error.wwwAuthenticate()).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]+", algs="ES256"$/);
  });

  it('refuses a valid proof made with another key: dpop_binding_mismatch', async () => {
    const thief = await proofKey();
    const error = await expectCode(verifier.verify(token, request(await proof(thief, token))), 'dpop_binding_mismatch');
    expect(error.oauthError).toBe('invalid_dpop_proof');
  });

  it('refuses a stale or future iat', async () => {
    await expectCode(verifier.verify(token, request(await proof(holder, token, { iat: nowSec() - 300 }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, { iat: nowSec() + 120 }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, { iat: String(nowSec()) }))), 'invalid_dpop_proof');
  });

  it('refuses a replayed proof (same jti): dpop_replay', async () => {
    const once = await proof(holder, token);
    await verifier.verify(token, request(once));
    const error = await expectCode(verifier.verify(token, request(once)), 'dpop_replay');
    expect(error.oauthError).toBe('invalid_dpop_proof');
  });

  it('refuses malformed proofs: typ, alg, private or missing jwk, signature, several headers, missing jti', async () => {
    await expectCode(verifier.verify(token, request(await proof(holder, token, {}, { typ: 'JWT' }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, {}, { jwk: undefined }))), 'invalid_dpop_proof');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    await expectCode(verifier.verify(token, request(await proof(holder, token, {}, { jwk: privateJwk }))), 'invalid_dpop_proof');
    const valid = await proof(holder, token);
    const [h, p, s] = valid.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ htm: 'GET', htu: URL_ORDERS, iat: nowSec(), jti: 'x', ath: ath(token) })).toString('base64url')}.${s}`;
    await expectCode(verifier.verify(token, request(forged)), 'invalid_dpop_proof');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: holder.jwk })).toString('base64url')}.${p}.`;
    await expectCode(verifier.verify(token, request(none)), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request([valid, await proof(holder, token)])), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request(await proof(holder, token, { jti: undefined }))), 'invalid_dpop_proof');
    await expectCode(verifier.verify(token, request('not-a-jwt')), 'invalid_dpop_proof');
  });

  it('accepts EdDSA proofs only when configured', async () => {
    const ed = await proofKey('EdDSA');
    const edToken = await signToken(issuer, accessClaims({ cnf: { jkt: ed.jkt } }));
    await expectCode(verifier.verify(edToken, request(await proof(ed, edToken))), 'invalid_dpop_proof');
    const both = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: jwksOf(issuer), dpop: { algorithms: ['ES256', 'EdDSA'] } });
    await expect(both.verify(edToken, request(await proof(ed, edToken)))).resolves.toMatchObject({ cnf: { jkt: ed.jkt } });
  });

  it('asks for a server nonce when configured (use_dpop_nonce, with the next nonce)', async () => {
    const issued = new Set(['n-1']);
    const withNonce = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: jwksOf(issuer),
      dpop: { nonce: { check: (nonce) => issued.has(nonce), next: () => 'n-1' } },
    });
    const missing = await expectCode(withNonce.verify(token, request(await proof(holder, token))), 'use_dpop_nonce');
    expect(missing.dpopNonce).toBe('n-1');
    expect(missing.wwwAuthenticate()).toMatch(/^DPoP error="use_dpop_nonce"/);
    await expectCode(withNonce.verify(token, request(await proof(holder, token, { nonce: 'n-0' }))), 'use_dpop_nonce');
    await expect(withNonce.verify(token, request(await proof(holder, token, { nonce: 'n-1' })))).resolves.toBeDefined();
  });

  it('keeps certificate-bound and bearer tokens as before when a proof is passed', async () => {
    const bearer = await signToken(issuer, accessClaims());
    await expectCode(verifier.verify(bearer, request(await proof(holder, bearer))), 'binding_missing');
  });
});

describe('createMemoryDpopReplayStore', () => {
  it('refuses a known key until it expires and refuses rather than forgets when full', () => {
    const store = createMemoryDpopReplayStore({ maxEntries: 2 });
    const later = nowSec() + 60;
    expect(store.useOnce('a', later)).toBe(true);
    expect(store.useOnce('a', later)).toBe(false);
    expect(store.useOnce('b', later)).toBe(true);
    expect(store.useOnce('c', later)).toBe(false);
    // Expired entries make room and may be used again.
    const expired = createMemoryDpopReplayStore({ maxEntries: 1 });
    expect(expired.useOnce('a', nowSec() - 1)).toBe(true);
    expect(expired.useOnce('a', later)).toBe(true);
    expect(expired.useOnce('b', later)).toBe(false);
  });
});
