import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, createLocalJWKSet, exportJWK, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { NodeEs256SigningKey } from '../../../src/keys/node-signing-key.js';
import { generateSigningKey, providerSigningKeys, publicJwks, type SigningJwk } from '../../../src/keys/signing-keys.js';

describe('NodeEs256SigningKey (oidc-provider ExternalSigningKey over node:crypto)', () => {
  it('exposes the public JWK of its key under its kid and signs JWS that verify with it', async () => {
    const jwk = await generateSigningKey();
    const key = new NodeEs256SigningKey(jwk);
    expect({ kid: key.kid, alg: key.alg, use: key.use, kty: key.kty, crv: key.crv, x: key.x, y: key.y }).toEqual({
      kid: jwk.kid,
      alg: 'ES256',
      use: 'sig',
      kty: 'EC',
      crv: 'P-256',
      x: jwk.x,
      y: jwk.y,
    });
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: jwk.kid })).toString('base64url');
    const payload = Buffer.from('{"sub":"alice"}').toString('base64url');
    const signature = Buffer.from(await key.sign(Buffer.from(`${header}.${payload}`))).toString('base64url');
    const { x, y, crv, kty } = jwk;
    const verified = await compactVerify(`${header}.${payload}.${signature}`, await importJWK({ x, y, crv, kty }, 'ES256'));
    expect(Buffer.from(verified.payload).toString()).toBe('{"sub":"alice"}');
  });

  it('refuses a key that is not P-256', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const p384 = { ...(await exportJWK(privateKey)), kid: 'p384', alg: 'ES256', use: 'sig' } as unknown as SigningJwk;
    expect(() => new NodeEs256SigningKey(p384)).toThrow(/not an ES256/);
  });

  it('follows the key set: current first, and a rotated-in current key verifies with the published JWKS', async () => {
    const set = { current: await generateSigningKey(), next: await generateSigningKey() };
    const rotated = { previous: set.current, current: set.next, next: await generateSigningKey() };
    const signers = providerSigningKeys(rotated).keys;
    expect(signers.map((signer) => signer.kid)).toEqual([rotated.current.kid, rotated.next.kid, rotated.previous.kid]);
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: signers[0]!.kid })).toString('base64url');
    const payload = Buffer.from('{}').toString('base64url');
    const token = `${header}.${payload}.${Buffer.from(await signers[0]!.sign(Buffer.from(`${header}.${payload}`))).toString('base64url')}`;
    // Resource servers holding the JWKS from before the rotation already know the new current key.
    await expect(compactVerify(token, createLocalJWKSet(publicJwks(set)))).resolves.toBeTruthy();
    await expect(compactVerify(token, createLocalJWKSet({ keys: publicJwks(rotated).keys.filter((k) => k.kid !== rotated.current.kid) }))).rejects.toThrow();
  });
});
