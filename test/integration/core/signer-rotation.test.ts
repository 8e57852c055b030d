import { decodeProtectedHeader } from 'jose';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { createAccessTokenVerifier } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

// Tokens are signed by node:crypto signers built once per key set (features.externalSigningSupport)
// and verified by custos/verify with keys imported once: a rotation must switch both.

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

async function issueToken(): Promise<string> {
  const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
  expect(status).toBe(200);
  return body.access_token as string;
}

describe('signing after a key rotation', () => {
  it('the new current key signs, and a verifier that cached keys before the rotation accepts old and new tokens', async () => {
    const agent = app.agent();
    const verifier = createAccessTokenVerifier({
      issuer: app.issuer,
      audience: DEMO.ordersResource,
      requireBinding: false,
      jwksUri: `${app.issuer}/jwks`,
      fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch,
    });
    const before = await issueToken();
    const oldKid = app.custos.keys().current.kid;
    expect(decodeProtectedHeader(before).kid).toBe(oldKid);
    expect((await verifier.verify(before)).client_id).toBe('reporting-job');

    const rotated = await rotateSigningKeys(app.keysDir);
    await app.custos.reload();
    const after = await issueToken();
    expect(decodeProtectedHeader(after).kid).toBe(rotated.current.kid);
    expect(rotated.current.kid).not.toBe(oldKid);
    expect((await verifier.verify(after)).client_id).toBe('reporting-job');
    expect((await verifier.verify(before)).client_id).toBe('reporting-job');

    // A second rotation: the key that signed `before` leaves the JWKS, a fresh verifier refuses it.
    await rotateSigningKeys(app.keysDir);
    await app.custos.reload();
    const fresh = createAccessTokenVerifier({
      issuer: app.issuer,
      audience: DEMO.ordersResource,
      requireBinding: false,
      jwksUri: `${app.issuer}/jwks`,
      fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch,
    });
    await expect(fresh.verify(before)).rejects.toMatchObject({ code: 'unknown_key' });
    expect(decodeProtectedHeader(await issueToken()).kid).toBe(app.custos.keys().current.kid);
    await expect(fresh.verify(await issueToken())).resolves.toMatchObject({ client_id: 'reporting-job' });
  });
});
