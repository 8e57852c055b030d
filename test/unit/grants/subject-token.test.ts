import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSubjectTokenValidator } from '../../../src/grants/token-exchange/subject-token.js';
import { flipS, lowS } from '../../helpers/jws.js';

const ISSUER = 'https://custos.test';

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

async function userToken(key: SigningKey, options: { sub?: string; ttl?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return lowS(await new SignJWT({ client_id: 'web-bff', scope: 'orders orders:read' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
    .setIssuer(ISSUER)
    .setSubject(options.sub ?? 'alice')
    .setAudience('https://api.custos.test/orders')
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttl ?? 300))
    .setJti(randomBytes(12).toString('base64url'))
    .sign(key.privateKey));
}

/** A key set as the server builds one (jose's local JWKS), counting the key look-ups it answers. */
function keySet(...keys: SigningKey[]) {
  const local = createLocalJWKSet({ keys: keys.map((key) => key.publicJwk) });
  const counter = { lookups: 0 };
  const resolver: JWTVerifyGetKey = (header, token) => {
    counter.lookups++;
    return local(header, token);
  };
  return Object.assign(counter, { resolver });
}

function validator(current: () => JWTVerifyGetKey, maxRemembered?: number) {
  return createSubjectTokenValidator({ issuer: ISSUER, verificationKeys: current, findAccessToken: async () => undefined, maxRemembered });
}

let oldKey: SigningKey;
let newKey: SigningKey;
beforeAll(async () => {
  [oldKey, newKey] = await Promise.all([signingKey('old'), signingKey('new')]);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('subject token validation', () => {
  it('verifies a JWT once and reuses the verification for the same token under the same keys', async () => {
    const keys = keySet(oldKey);
    const validate = validator(() => keys.resolver);
    const token = await userToken(oldKey);
    const first = await validate(token);
    expect(first).toMatchObject({ sub: 'alice', clientId: 'web-bff', aud: ['https://api.custos.test/orders'], scopes: ['orders', 'orders:read'] });
    expect(keys.lookups).toBe(1);
    expect(await validate(token)).toEqual(first);
    expect(keys.lookups).toBe(1);
    // Another token is verified in full.
    await validate(await userToken(oldKey, { sub: 'bob' }));
    expect(keys.lookups).toBe(2);
  });

  it('verifies every other text in full: a remembered token with a changed signature is refused', async () => {
    const keys = keySet(oldKey);
    const validate = validator(() => keys.resolver);
    const token = await userToken(oldKey);
    await validate(token);
    const at = token.length - 20;
    const tampered = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
    await expect(validate(tampered)).rejects.toMatchObject({ error: 'invalid_request', error_description: 'subject_token is invalid or was not issued by this server' });
  });

  it('refuses the high-S twin of a remembered token (same claims, S replaced by n − S, verifies with node:crypto)', async () => {
    const keys = keySet(oldKey);
    const validate = validator(() => keys.resolver);
    const token = await userToken(oldKey);
    await validate(token);
    await expect(validate(flipS(token))).rejects.toMatchObject({ error: 'invalid_request', error_description: 'subject_token is invalid or was not issued by this server' });
  });

  it('verifies again when the keys change: a token whose key was dropped by a rotation is refused', async () => {
    const before = keySet(oldKey);
    const afterOneRotation = keySet(newKey, oldKey);
    const afterTwoRotations = keySet(newKey);
    let current = before;
    const validate = validator(() => current.resolver);
    const token = await userToken(oldKey);
    await validate(token);

    // The signing key is still published (previous): verified again, accepted.
    current = afterOneRotation;
    expect(await validate(token)).toMatchObject({ sub: 'alice' });
    expect(afterOneRotation.lookups).toBe(1);
    // Dropped: refused, although the token was verified before.
    current = afterTwoRotations;
    await expect(validate(token)).rejects.toMatchObject({ error: 'invalid_request', error_description: 'subject_token is invalid or was not issued by this server' });
    expect(afterTwoRotations.lookups).toBe(1);
  });

  it('refuses a remembered token once it has expired', async () => {
    const keys = keySet(oldKey);
    const validate = validator(() => keys.resolver);
    const token = await userToken(oldKey, { ttl: 60 });
    await validate(token);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    await expect(validate(token)).rejects.toMatchObject({ error: 'invalid_request', error_description: 'subject_token is expired' });
  });

  it('remembers at most maxRemembered tokens, the least recently used going first', async () => {
    const keys = keySet(oldKey);
    const validate = validator(() => keys.resolver, 2);
    const [a, b, c] = await Promise.all([userToken(oldKey, { sub: 'a' }), userToken(oldKey, { sub: 'b' }), userToken(oldKey, { sub: 'c' })]);
    await validate(a);
    await validate(b);
    await validate(a); // a is now the most recently used
    expect(keys.lookups).toBe(2);
    await validate(c); // evicts b
    expect(keys.lookups).toBe(3);
    await validate(a);
    expect(keys.lookups).toBe(3);
    await validate(b);
    expect(keys.lookups).toBe(4);
  });
});
