import { randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

/** DPOP_REQUIRE_NONCE=true (RFC 9449 §8): every proof at the token endpoint carries a server nonce. */

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ env: { DPOP_REQUIRE_NONCE: 'true' } });
});
afterAll(async () => {
  await app?.stop();
});

async function tokenRequest(proof: string) {
  const response = await undiciFetch(`${app.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`,
      dpop: proof,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read' }).toString(),
    dispatcher: app.agent(),
  });
  return { status: response.status, nonce: response.headers.get('dpop-nonce'), body: (await response.json()) as Record<string, unknown> };
}

describe('DPoP with required server nonces', () => {
  it('answers a fresh proof without a nonce with use_dpop_nonce and a nonce, and accepts it with that nonce', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = (claims: Record<string, unknown> = {}) =>
      new SignJWT({ htm: 'POST', htu: `${app.issuer}/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
    const first = await tokenRequest(await proof());
    expect([first.status, first.body.error]).toEqual([400, 'use_dpop_nonce']);
    expect(first.nonce).toMatch(/^[A-Za-z0-9_-]+$/);
    const forged = await tokenRequest(await proof({ nonce: `${first.nonce}x` }));
    expect([forged.status, forged.body.error]).toEqual([400, 'use_dpop_nonce']);
    const second = await tokenRequest(await proof({ nonce: first.nonce }));
    expect([second.status, second.body.token_type]).toEqual([200, 'DPoP']);
  });

  it('works with openid-client, which retries once with the nonce', async () => {
    const agent = app.agent();
    const trusted = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch;
    const configuration = await oidc.discovery(new URL(app.issuer), DEMO.reportingJob[0], undefined, oidc.ClientSecretBasic(DEMO.reportingJob[1]), {
      [oidc.customFetch]: trusted as never,
    });
    const DPoP = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.clientCredentialsGrant(configuration, { scope: 'orders:read' }, { DPoP });
    expect(tokens.token_type).toBe('dpop');
    expect(decodeJwt(tokens.access_token).cnf).toHaveProperty('jkt');
  });
});
