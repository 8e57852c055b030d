import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { hashSecret } from '../../../src/iam/secret-hash.js';

/** An SSF receiver without mTLS that binds its token with DPoP (RFC 9449) calls the stream management API. */

const RECEIVER = ['ssf-dpop-receiver', 'ssf-dpop-receiver-secret-0123456789'] as [string, string];
let config: TempConfigDir;
let app: TestApp;

beforeAll(async () => {
  config = await configDirWithClients([
    {
      client_id: RECEIVER[0],
      client_secret_hash: await hashSecret(RECEIVER[1]),
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      dpop_bound_access_tokens: true,
      scope: 'ssf.manage ssf.read',
      resources: ['urn:custos:ssf'],
      default_resource: 'urn:custos:ssf',
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

async function receiver() {
  const agent = app.agent();
  const trusted = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch;
  const configuration = await oidc.discovery(new URL(app.issuer), RECEIVER[0], undefined, oidc.ClientSecretPost(RECEIVER[1]), { [oidc.customFetch]: trusted as never });
  const keyPair = await oidc.randomDPoPKeyPair('ES256');
  const DPoP = oidc.getDPoPHandle(configuration, keyPair);
  const { access_token: token, token_type: type } = await oidc.clientCredentialsGrant(configuration, { scope: 'ssf.manage ssf.read', resource: 'urn:custos:ssf' }, { DPoP });
  return { configuration, DPoP, token, type };
}

describe('SSF stream management with a DPoP-bound token', () => {
  it('creates and reads a stream with openid-client (token and proofs); the token as Bearer is refused', async () => {
    const { configuration, DPoP, token, type } = await receiver();
    expect(type).toBe('dpop');
    const streams = new URL(`${app.issuer}/ssf/streams`);
    const created = await oidc.fetchProtectedResource(
      configuration,
      token,
      streams,
      'POST',
      JSON.stringify({ delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'] }),
      new Headers({ 'content-type': 'application/json' }),
      { DPoP },
    );
    expect(created.status).toBe(201);
    const { stream_id: streamId } = (await created.json()) as { stream_id: string };
    const read = await oidc.fetchProtectedResource(configuration, token, new URL(`${streams}?stream_id=${streamId}`), 'GET', undefined, undefined, { DPoP });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ stream_id: streamId });

    const asBearer = await undiciFetch(streams, { headers: { authorization: `Bearer ${token}` }, dispatcher: app.agent() });
    expect(asBearer.status).toBe(401);
    expect(((await asBearer.json()) as { error: string }).error).toBe('dpop_proof_required');
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP /);
  });

  it('refuses a replayed proof, a proof for another URL and a proof by another key', async () => {
    const { token } = await receiver();
    const url = `${app.issuer}/ssf/streams`;
    const ath = createHash('sha256').update(token).digest('base64url');
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = (htu: string) =>
      new SignJWT({ htm: 'GET', htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
    const call = async (dpop: string) => {
      const response = await undiciFetch(url, { headers: { authorization: `DPoP ${token}`, dpop }, dispatcher: app.agent() });
      return { status: response.status, error: response.status === 200 ? undefined : ((await response.json()) as { error: string }).error };
    };
    // Another key than the token's: the binding does not match.
    expect(await call(await proof(url))).toEqual({ status: 401, error: 'dpop_binding_mismatch' });
    expect((await call(await proof(`${app.issuer}/ssf/status`))).status).toBe(401);
  });

  it('accepts a proof once, also under concurrency', async () => {
    const { configuration, DPoP, token } = await receiver();
    // openid-client signs each request's proof; capture one and replay it in parallel.
    let captured: string | undefined;
    const capture = ((input: string | URL, init?: RequestInit) => {
      captured = new Headers(init?.headers).get('dpop') ?? undefined;
      return undiciFetch(input, { ...(init as object), dispatcher: app.agent() });
    }) as unknown as typeof fetch;
    configuration[oidc.customFetch] = capture as never;
    const url = new URL(`${app.issuer}/ssf/streams`);
    expect((await oidc.fetchProtectedResource(configuration, token, url, 'GET', undefined, undefined, { DPoP })).status).toBe(200);
    expect(captured).toBeDefined();
    const replays = await Promise.all(
      Array.from({ length: 6 }, () => undiciFetch(url, { headers: { authorization: `DPoP ${token}`, dpop: captured! }, dispatcher: app.agent() })),
    );
    expect(replays.map((response) => response.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(await Promise.all(replays.map(async (response) => ((await response.json()) as { error: string }).error))).toEqual(Array(6).fill('dpop_replay'));
  });
});
