import { createHmac, createPublicKey, verify as nodeVerify, type JsonWebKey } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAccessTokenVerifier, type AccessTokenVerifier, type VerifyErrorCode } from '../../../src/verify/index.js';
import { VerifyError } from '../../../src/verify/errors.js';
import {
  AUDIENCE,
  ISSUER,
  accessClaims,
  b64url,
  jwksOf,
  makeClientCert,
  makeIssuerKey,
  nowSec,
  signToken,
  type ClientCert,
  type IssuerKey,
} from './fixtures.js';
import { flipS } from '../../helpers/jws.js';

let key: IssuerKey;
let otherKey: IssuerKey;
let certA: ClientCert;
let certB: ClientCert;
let verifier: AccessTokenVerifier;

beforeAll(async () => {
  [key, otherKey, certA, certB] = await Promise.all([
    makeIssuerKey('key-1'),
    makeIssuerKey('key-2'),
    makeClientCert('client-a'),
    makeClientCert('client-b'),
  ]);
  verifier = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: jwksOf(key) });
});

/** A token bound to certificate A unless overridden. */
const boundClaims = (overrides: Record<string, unknown> = {}) =>
  accessClaims({ cnf: { 'x5t#S256': certA.thumbprint }, ...overrides });

async function expectCode(promise: Promise<unknown>, code: VerifyErrorCode): Promise<VerifyError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, `expected VerifyError ${code}`).toBeInstanceOf(VerifyError);
  expect((error as VerifyError).code).toBe(code);
  return error as VerifyError;
}

describe('createAccessTokenVerifier: happy path', () => {
  it('accepts a certificate-bound token presented with its certificate and returns typed claims', async () => {
    const claims = boundClaims({ act: { sub: 'gateway', act: { sub: 'edge' } } });
    const token = await signToken(key, claims);
    const result = await verifier.verify(token, { clientCertificate: certA.node });
    expect(result).toMatchObject({
      iss: ISSUER,
      sub: 'user-123',
      aud: AUDIENCE,
      client_id: 'web-bff',
      jti: claims.jti,
      exp: claims.exp,
      iat: claims.iat,
      scope: ['openid', 'orders'],
      cnf: { 'x5t#S256': certA.thumbprint },
      act: { sub: 'gateway', act: { sub: 'edge' } },
    });
  });

  it('accepts the certificate as X509Certificate, DER bytes, or PEM text', async () => {
    const token = await signToken(key, boundClaims());
    for (const clientCertificate of [certA.node, certA.der, certA.pem, Buffer.from(certA.der)]) {
      await expect(verifier.verify(token, { clientCertificate })).resolves.toMatchObject({ sub: 'user-123' });
    }
  });

  it('accepts typ application/at+jwt (RFC 9068 §2.1) and an aud array containing one configured audience', async () => {
    const token = await signToken(key, boundClaims({ aud: ['https://other.test', AUDIENCE] }), {
      typ: 'application/at+jwt',
    });
    await expect(verifier.verify(token, { clientCertificate: certA.pem })).resolves.toMatchObject({
      aud: ['https://other.test', AUDIENCE],
    });
  });

  it('accepts any one of several configured audiences', async () => {
    const multi = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: ['https://billing.api.test', AUDIENCE],
      jwks: jwksOf(key),
    });
    const token = await signToken(key, boundClaims());
    await expect(multi.verify(token, { clientCertificate: certA.der })).resolves.toBeTruthy();
  });

  it('accepts a token without scope, and mixed resume/normal scopes', async () => {
    const noScope = await signToken(key, boundClaims({ scope: undefined }));
    expect((await verifier.verify(noScope, { clientCertificate: certA.node })).scope).toEqual([]);
    const mixed = await signToken(key, boundClaims({ scope: 'orders resume_orders' }));
    expect((await verifier.verify(mixed, { clientCertificate: certA.node })).scope).toEqual(['orders', 'resume_orders']);
  });

  it('accepts nbf/exp within the clock tolerance', async () => {
    const now = nowSec();
    const token = await signToken(key, boundClaims({ nbf: now + 3, iat: now + 3 }));
    await expect(verifier.verify(token, { clientCertificate: certA.node })).resolves.toBeTruthy();
    const justExpired = await signToken(key, boundClaims({ iat: now - 100, exp: now - 2 }));
    await expect(verifier.verify(justExpired, { clientCertificate: certA.node })).resolves.toBeTruthy();
  });

  it('tries every matching key when the token has no kid', async () => {
    const both = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: jwksOf(otherKey, key) });
    const token = await signToken(key, boundClaims(), { kid: undefined });
    await expect(both.verify(token, { clientCertificate: certA.node })).resolves.toBeTruthy();
    const stranger = await makeIssuerKey('stranger');
    const foreign = await signToken(stranger, boundClaims(), { kid: undefined });
    await expectCode(both.verify(foreign, { clientCertificate: certA.node }), 'invalid_token');
  });
});

describe('createAccessTokenVerifier: signature malleability', () => {
  it('refuses the high-S twin of a valid token (S replaced by n − S verifies with node:crypto and jose)', async () => {
    const token = await signToken(key, boundClaims());
    await expect(verifier.verify(token, { clientCertificate: certA.node })).resolves.toMatchObject({ sub: 'user-123' });
    const twin = flipS(token);
    const [header, payload, signature] = twin.split('.') as [string, string, string];
    const raw = createVerify(header, payload, signature);
    expect(raw).toBe(true);
    await expectCode(verifier.verify(twin, { clientCertificate: certA.node }), 'invalid_token');
  });

  it('refuses a signature that is not exactly 64 bytes (DER-encoded, or with a byte appended)', async () => {
    const token = await signToken(key, boundClaims());
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const bytes = Buffer.from(signature, 'base64url');
    const der = derOf(bytes);
    for (const bad of [der, Buffer.concat([bytes, Buffer.alloc(1)])]) {
      await expectCode(verifier.verify(`${header}.${payload}.${bad.toString('base64url')}`, { clientCertificate: certA.node }), 'invalid_token');
    }
  });
});

/** node:crypto's own verification of an ES256 compact JWS with the test issuer key. */
function createVerify(header: string, payload: string, signature: string): boolean {
  return nodeVerify('sha256', Buffer.from(`${header}.${payload}`), { key: createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
}

/** The ASN.1 DER form (RFC 3279 §2.2.3) of an R ‖ S signature. */
function derOf(p1363: Buffer): Buffer {
  const integer = (bytes: Buffer) => {
    let value = bytes;
    while (value.length > 1 && value[0] === 0 && value[1]! < 0x80) value = value.subarray(1);
    if (value[0]! >= 0x80) value = Buffer.concat([Buffer.from([0]), value]);
    return Buffer.concat([Buffer.from([0x02, value.length]), value]);
  };
  const body = Buffer.concat([integer(p1363.subarray(0, 32)), integer(p1363.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

describe('createAccessTokenVerifier: certificate binding (RFC 8705 §3)', () => {
  it('rejects a token bound to certificate A presented with certificate B', async () => {
    const token = await signToken(key, boundClaims());
    const error = await expectCode(verifier.verify(token, { clientCertificate: certB.node }), 'binding_mismatch');
    expect(error.status).toBe(401);
    await expectCode(verifier.verify(token, { clientCertificate: certB.pem }), 'binding_mismatch');
  });

  it('requires a certificate for a bound token', async () => {
    const token = await signToken(key, boundClaims());
    await expectCode(verifier.verify(token), 'certificate_required');
    await expectCode(verifier.verify(token, {}), 'certificate_required');
  });

  it('treats unparsable PEM as no usable certificate', async () => {
    const token = await signToken(key, boundClaims());
    await expectCode(verifier.verify(token, { clientCertificate: 'not a certificate' }), 'certificate_required');
  });

  it('rejects an unbound token by default, accepts it with requireBinding: false', async () => {
    const token = await signToken(key, accessClaims());
    await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'binding_missing');
    const lenient = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: jwksOf(key),
      requireBinding: false,
    });
    await expect(lenient.verify(token)).resolves.toMatchObject({ sub: 'user-123' });
    // ...but a bound token is still checked when binding is optional.
    const bound = await signToken(key, boundClaims());
    await expectCode(lenient.verify(bound), 'certificate_required');
    await expectCode(lenient.verify(bound, { clientCertificate: certB.der }), 'binding_mismatch');
  });

  it('rejects confirmation methods it cannot check and malformed thumbprints', async () => {
    const lenient = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: jwksOf(key),
      requireBinding: false,
    });
    const unknown = await signToken(key, accessClaims({ cnf: { 'x5t#S512': certA.thumbprint } }));
    await expectCode(lenient.verify(unknown, { clientCertificate: certA.node }), 'invalid_token');
    // A DPoP-bound token is never accepted on a certificate alone (RFC 9449 §7.1).
    const dpop = await signToken(key, accessClaims({ cnf: { jkt: certA.thumbprint } }));
    await expectCode(lenient.verify(dpop, { clientCertificate: certA.node }), 'dpop_proof_required');
    const both = await signToken(key, accessClaims({ cnf: { jkt: certA.thumbprint, 'x5t#S256': certA.thumbprint } }));
    await expectCode(lenient.verify(both, { clientCertificate: certA.node }), 'invalid_token');
    const malformed = await signToken(key, accessClaims({ cnf: { 'x5t#S256': `${certA.thumbprint}=` } }));
    await expectCode(lenient.verify(malformed, { clientCertificate: certA.node }), 'invalid_token');
  });
});

describe('createAccessTokenVerifier: signature, key and algorithm attacks', () => {
  it('rejects a token signed by a key not in the JWKS (unknown kid)', async () => {
    const token = await signToken(otherKey, boundClaims());
    await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'unknown_key');
  });

  it('rejects a token signed by another key under a trusted kid (bad signature)', async () => {
    const token = await signToken(otherKey, boundClaims(), { kid: key.kid });
    await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'invalid_token');
  });

  it('rejects a token whose payload was altered after signing', async () => {
    const token = await signToken(key, boundClaims());
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64url(JSON.stringify(boundClaims({ sub: 'admin' })))}.${signature}`;
    await expectCode(verifier.verify(forged, { clientCertificate: certA.node }), 'invalid_token');
  });

  it('rejects an unsecured JWT (alg: none)', async () => {
    const header = b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: key.kid }));
    const payload = b64url(JSON.stringify(boundClaims()));
    await expectCode(verifier.verify(`${header}.${payload}.`, { clientCertificate: certA.node }), 'invalid_token');
  });

  it('rejects HS256 signed with the public key as HMAC secret (key confusion)', async () => {
    const publicPem = createPublicKey({ key: key.publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const secrets = [publicPem, JSON.stringify(key.publicJwk), Buffer.from(key.publicJwk.x!, 'base64url')];
    for (const secret of secrets) {
      const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }))}.${b64url(JSON.stringify(boundClaims()))}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      const error = await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'invalid_token');
      expect((error.cause as Error).name).toBe('JOSEAlgNotAllowed');
    }
  });

  it('rejects RS256 even when the RSA key is in the trusted JWKS', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    const withRsa = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [key.publicJwk, rsaJwk] },
    });
    const token = await new SignJWT(boundClaims())
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'rsa-1' })
      .sign(rsa.privateKey);
    await expectCode(withRsa.verify(token, { clientCertificate: certA.node }), 'invalid_token');
  });

  it('rejects typ JWT, a missing typ, and non-string garbage', async () => {
    const jwt = await signToken(key, boundClaims(), { typ: 'JWT' });
    await expectCode(verifier.verify(jwt, { clientCertificate: certA.node }), 'invalid_token');
    const none = await signToken(key, boundClaims(), { typ: undefined });
    await expectCode(verifier.verify(none, { clientCertificate: certA.node }), 'invalid_token');
    await expectCode(verifier.verify('a.b.c'), 'invalid_token');
    await expectCode(verifier.verify(''), 'invalid_token');
    await expectCode(verifier.verify(42 as unknown as string), 'invalid_token');
  });
});

describe('createAccessTokenVerifier: claims', () => {
  it('rejects an expired token', async () => {
    const now = nowSec();
    const token = await signToken(key, boundClaims({ iat: now - 600, exp: now - 60 }));
    await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'token_expired');
  });

  it('rejects nbf (or iat) in the future beyond the tolerance', async () => {
    const now = nowSec();
    const nbf = await signToken(key, boundClaims({ nbf: now + 120 }));
    await expectCode(verifier.verify(nbf, { clientCertificate: certA.node }), 'token_not_yet_valid');
    const iat = await signToken(key, boundClaims({ iat: now + 120 }));
    await expectCode(verifier.verify(iat, { clientCertificate: certA.node }), 'token_not_yet_valid');
  });

  it('rejects a wrong audience and a wrong issuer', async () => {
    const aud = await signToken(key, boundClaims({ aud: 'https://billing.api.test' }));
    await expectCode(verifier.verify(aud, { clientCertificate: certA.node }), 'wrong_audience');
    const iss = await signToken(key, boundClaims({ iss: 'https://evil.test' }));
    await expectCode(verifier.verify(iss, { clientCertificate: certA.node }), 'wrong_issuer');
  });

  it('requires exp, iat, client_id and well-typed optional claims', async () => {
    for (const overrides of [
      { exp: undefined },
      { iat: undefined },
      { client_id: undefined },
      { aud: undefined },
      { scope: ['orders'] },
      { sub: 42 },
      { act: 'gateway' },
      { act: { sub: 'gateway', act: { iss: ISSUER } } },
    ]) {
      const token = await signToken(key, boundClaims(overrides));
      await expectCode(verifier.verify(token, { clientCertificate: certA.node }), 'invalid_token');
    }
  });

  it('refuses resume-only tokens and event tokens on an HTTP endpoint', async () => {
    const resume = await signToken(key, boundClaims({ scope: 'resume_orders resume_billing' }));
    const error = await expectCode(verifier.verify(resume, { clientCertificate: certA.node }), 'resume_only_token');
    expect(error.status).toBe(401);
    // Even unbound resume tokens are reported as such (not as binding_missing).
    const unbound = await signToken(key, accessClaims({ scope: 'resume_orders' }));
    await expectCode(verifier.verify(unbound), 'resume_only_token');
    const event = await signToken(
      key,
      boundClaims({ scope: 'orders', event_payload_hash: b64url(Buffer.alloc(32)) }),
    );
    await expectCode(verifier.verify(event, { clientCertificate: certA.node }), 'resume_only_token');
  });

  it('enforces requiredScopes with 403 insufficient_scope after authentication', async () => {
    const scoped = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: jwksOf(key),
      requiredScopes: ['orders', 'orders:write'],
    });
    const ok = await signToken(key, boundClaims({ scope: 'orders orders:write' }));
    await expect(scoped.verify(ok, { clientCertificate: certA.node })).resolves.toBeTruthy();
    const partial = await signToken(key, boundClaims({ scope: 'orders' }));
    const error = await expectCode(scoped.verify(partial, { clientCertificate: certA.node }), 'insufficient_scope');
    expect(error.status).toBe(403);
    expect(error.wwwAuthenticate('orders')).toBe(
      'Bearer realm="orders", error="insufficient_scope", error_description="The access token does not have the required scope", scope="orders orders:write"',
    );
    // Authentication failures win over scope failures.
    await expectCode(scoped.verify(partial, { clientCertificate: certB.node }), 'binding_mismatch');
    const none = await signToken(key, boundClaims({ scope: undefined }));
    await expectCode(scoped.verify(none, { clientCertificate: certA.node }), 'insufficient_scope');
  });
});

describe('createAccessTokenVerifier: options', () => {
  it('needs exactly one key source and a safe jwksUri', () => {
    expect(() => createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE })).toThrow(TypeError);
    expect(() =>
      createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: jwksOf(key), jwksUri: 'https://x.test/jwks' }),
    ).toThrow(TypeError);
    expect(() => createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: 'http://custos.test/jwks' })).toThrow(
      /https/,
    );
    expect(() => createAccessTokenVerifier({ issuer: ISSUER, audience: [], jwks: jwksOf(key) })).toThrow(TypeError);
  });
});
