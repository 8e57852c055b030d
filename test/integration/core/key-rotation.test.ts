import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSetSigningKeys } from '../../../src/keys/set-signing-keys.js';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

async function servedJwks(): Promise<JSONWebKeySet> {
  const response = await request(`${app.issuer}/jwks`, { dispatcher: app.agent() });
  expect(response.statusCode).toBe(200);
  return (await response.body.json()) as JSONWebKeySet;
}

const kids = (set: JSONWebKeySet) => set.keys.map((key) => key.kid);

async function issueToken(): Promise<string> {
  const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
  expect(status).toBe(200);
  return body.access_token as string;
}

async function verifyWith(token: string, set: JSONWebKeySet) {
  return jwtVerify(token, createLocalJWKSet(set), {
    issuer: app.issuer,
    audience: DEMO.ordersResource,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
}

describe('signing-key rotation (next → current → previous)', () => {
  it('after rotation and reload (SIGHUP), old tokens still verify and the old next key signs', async () => {
    const before = await servedJwks();
    const oldToken = await issueToken();
    const [oldCurrent, oldNext] = kids(before);
    expect(before.keys).toHaveLength(2);
    expect(decodeProtectedHeader(oldToken).kid).toBe(oldCurrent);

    const rotated = await rotateSigningKeys(app.keysDir);
    expect(rotated.previous?.kid).toBe(oldCurrent);
    expect(rotated.current.kid).toBe(oldNext);
    // Rotation on disk alone changes nothing until reload.
    expect(decodeProtectedHeader(await issueToken()).kid).toBe(oldCurrent);

    await app.custos.reload();

    const after = await servedJwks();
    expect(kids(after)).toEqual([rotated.current.kid, rotated.next.kid, rotated.previous!.kid]);
    expect(new Set(kids(after)).size).toBe(3);
    for (const key of after.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }

    // A token signed before the rotation still verifies against the JWKS served after it.
    const old = await verifyWith(oldToken, after);
    expect(old.protectedHeader.kid).toBe(oldCurrent);

    // The new current key (the old next) signs now ...
    const newToken = await issueToken();
    expect(decodeProtectedHeader(newToken).kid).toBe(oldNext);
    expect(app.custos.keys().current.kid).toBe(oldNext);
    await verifyWith(newToken, after);
    // ... and resource servers that cached the JWKS from before the rotation already know it.
    expect(kids(before)).toContain(decodeProtectedHeader(newToken).kid);
    await verifyWith(newToken, before);
  });

  it('a restart picks up a rotation too; a key two rotations old is no longer served', async () => {
    const before = await servedJwks();
    const tokenBefore = await issueToken();
    const [current, next, previous] = kids(before);
    expect(previous).toBeDefined();

    const rotated = await rotateSigningKeys(app.keysDir);
    await app.restart();

    const after = await servedJwks();
    expect(kids(after)).toEqual([next, rotated.next.kid, current]);
    expect(kids(after)).not.toContain(previous);

    await verifyWith(tokenBefore, after);
    const tokenAfter = await issueToken();
    expect(decodeProtectedHeader(tokenAfter).kid).toBe(next);
    await verifyWith(tokenAfter, before);
    await verifyWith(tokenAfter, after);
    // Sanity: a set holding only the dropped key does not verify the new token.
    const dropped = { keys: before.keys.filter((key) => key.kid === previous) };
    await expect(verifyWith(tokenAfter, dropped)).rejects.toThrow();
  });

  it('token exchange verifies a subject token again after a rotation: refused once its key is no longer published', async () => {
    const subject = await mintUserAccessToken(app);
    const kid = decodeProtectedHeader(subject).kid;
    const exchange = () =>
      app.token(
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          client_id: 'orders-api',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          event_payload_hash: eventPayloadHash({ order: 1 }),
        },
        { agent: app.clientAgent('orders-api') },
      );
    expect((await exchange()).status).toBe(200);
    expect((await exchange()).status).toBe(200);

    await rotateSigningKeys(app.keysDir);
    await app.custos.reload();
    expect(kids(await servedJwks())).toContain(kid);
    expect((await exchange()).status).toBe(200);

    await rotateSigningKeys(app.keysDir);
    await app.custos.reload();
    expect(kids(await servedJwks())).not.toContain(kid);
    const refused = await exchange();
    expect([refused.status, refused.body.error, refused.body.error_description]).toEqual([
      400,
      'invalid_request',
      'subject_token is invalid or was not issued by this server',
    ]);
  });

  it('a failed reload (missing key files) keeps serving with the previous keys', async () => {
    const kidBefore = app.custos.keys().current.kid;
    await rm(path.join(app.keysDir, 'signing', 'next.jwk.json'));
    await expect(app.custos.reload()).rejects.toThrow(/signing keys missing/);
    expect(app.custos.keys().current.kid).toBe(kidBefore);
    expect(decodeProtectedHeader(await issueToken()).kid).toBe(kidBefore);
  });
});

describe('SSF SET keys (RS256, CAEP Interoperability Profile §2.6): rotated like the others', () => {
  // Its own instance: the tests above leave the ES256 key files removed.
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.stop();
  });
  async function servedJwks(): Promise<JSONWebKeySet> {
    return (await (await request(`${app.issuer}/jwks`, { dispatcher: app.agent() })).body.json()) as JSONWebKeySet;
  }
  async function ssfJwks(): Promise<JSONWebKeySet> {
    const response = await request(`${app.issuer}/ssf/jwks`, { dispatcher: app.agent() });
    expect(response.statusCode).toBe(200);
    return (await response.body.json()) as JSONWebKeySet;
  }

  /** A verification SET of a fresh poll stream of the demo receiver: its header. */
  async function signedSetHeader(): Promise<{ kid?: string; alg?: string }> {
    const agent = app.clientAgent('ssf-receiver');
    const tokenResponse = await request(`${app.issuer}/token`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'ssf-receiver', scope: 'ssf.manage', resource: 'urn:custos:ssf' }).toString(),
    });
    const { access_token: token } = (await tokenResponse.body.json()) as { access_token: string };
    const call = async (url: string, body: unknown) => {
      const response = await request(url, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await response.body.text();
      return text ? JSON.parse(text) : undefined;
    };
    const stream = await call(`${app.issuer}/ssf/streams`, { events_requested: ['https://schemas.openid.net/secevent/ssf/event-type/verification'] });
    await call(`${app.issuer}/ssf/verify`, { stream_id: stream.stream_id });
    const polled = await call(stream.delivery.endpoint_url, { returnImmediately: true });
    const [set] = Object.values(polled.sets as Record<string, string>);
    return decodeProtectedHeader(set!);
  }

  it('rotation on disk changes nothing until reload (SIGHUP); then the old next signs and the old current stays published', async () => {
    const before = await ssfJwks();
    const [oldCurrent, oldNext] = kids(before);
    expect(await signedSetHeader()).toMatchObject({ alg: 'RS256', kid: oldCurrent });
    const rotated = await rotateSetSigningKeys(app.keysDir);
    expect(await signedSetHeader()).toMatchObject({ kid: oldCurrent });
    await app.custos.reload();
    expect(kids(await ssfJwks())).toEqual([rotated.current.kid, rotated.next.kid, oldCurrent]);
    expect(rotated.current.kid).toBe(oldNext);
    expect(await signedSetHeader()).toMatchObject({ alg: 'RS256', kid: oldNext });
    // The token keys are another set: untouched.
    expect((await servedJwks()).keys.every((key) => key.alg === 'ES256')).toBe(true);
  });
});
