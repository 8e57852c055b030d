import { createLocalJWKSet, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUser } from '../../../src/iam/user.repository.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

/** A real user (refresh reads the account from the database); returns its id. */
async function newUser(username: string): Promise<string> {
  return (await insertUser(app.custos.db, { username })).id;
}

/** Creates a Grant and a RefreshToken for web-bff through the running provider's models. */
async function issueRefreshToken(accountId: string): Promise<{ grantId: string; refreshToken: string }> {
  const provider = app.custos.provider();
  const grant = new provider.Grant({ accountId, clientId: 'web-bff' });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(DEMO.ordersResource, 'orders:read');
  const grantId = await grant.save();
  const client = await provider.Client.find('web-bff');
  expect(client).toBeDefined();
  const token = new provider.RefreshToken({
    accountId,
    client: client!,
    grantId,
    gty: 'authorization_code',
    scope: 'openid offline_access orders:read',
    resource: DEMO.ordersResource,
  });
  const refreshToken = await token.save();
  return { grantId, refreshToken };
}

async function refresh(refreshToken: string) {
  return app.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, { basic: DEMO.webBff });
}

async function jwks() {
  const response = await request(`${app.issuer}/jwks`, { dispatcher: app.agent() });
  return createLocalJWKSet((await response.body.json()) as { keys: [] });
}

async function storedModels(grantId: string) {
  return app.custos.db.selectFrom('oidc_model').select(['model', 'id']).where((eb) => eb.or([eb('grant_id', '=', grantId), eb('id', '=', grantId)])).execute();
}

describe('persistence across a restart', () => {
  it('a grant and its refresh token survive app.restart() and the refresh token still works', async () => {
    const accountId = await newUser(`user-${Date.now()}`);
    const { grantId, refreshToken } = await issueRefreshToken(accountId);
    const firstProvider = app.custos.provider();
    expect((await storedModels(grantId)).map((row) => row.model).sort()).toEqual(['Grant', 'RefreshToken']);

    await app.restart();
    const provider = app.custos.provider();
    expect(provider).not.toBe(firstProvider);

    const grant = await provider.Grant.find(grantId);
    expect(grant).toBeDefined();
    expect(grant).toMatchObject({ accountId, clientId: 'web-bff' });
    expect(grant!.getOIDCScope()).toBe('openid offline_access');
    expect(grant!.getResourceScope(DEMO.ordersResource)).toBe('orders:read');

    const stored = await provider.RefreshToken.find(refreshToken);
    expect(stored).toBeDefined();
    expect(stored).toMatchObject({ accountId, clientId: 'web-bff', grantId, scope: 'openid offline_access orders:read' });
    expect(stored!.isValid).toBe(true);

    // End to end: the new process honours the refresh token at the token endpoint.
    const { status, body } = await refresh(refreshToken);
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'orders:read' });
    const { payload } = await jwtVerify(body.access_token, await jwks(), { issuer: app.issuer, audience: DEMO.ordersResource, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: accountId, client_id: 'web-bff', scope: 'orders:read' });
  });

  it('a revoked grant is gone after restart, with its refresh token', async () => {
    const accountId = await newUser(`user-revoked-${Date.now()}`);
    const kept = await issueRefreshToken(await newUser(`user-kept-${Date.now()}`));
    const { grantId, refreshToken } = await issueRefreshToken(accountId);
    expect((await refresh(refreshToken)).status).toBe(200);

    // RFC 7009: revoking a refresh token revokes the grant and every token of it.
    const response = await request(`${app.issuer}/token/revocation`, {
      method: 'POST',
      dispatcher: app.agent(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(DEMO.webBff.join(':')).toString('base64')}`,
      },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }).toString(),
    });
    expect(response.statusCode).toBe(200);
    await response.body.dump();
    expect(await storedModels(grantId)).toEqual([]);

    await app.restart();
    const provider = app.custos.provider();
    expect(await provider.Grant.find(grantId)).toBeUndefined();
    expect(await provider.RefreshToken.find(refreshToken)).toBeUndefined();
    const { status, body } = await refresh(refreshToken);
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_grant');

    // Another grant of the same client is untouched.
    expect(await provider.Grant.find(kept.grantId)).toBeDefined();
    expect((await refresh(kept.refreshToken)).status).toBe(200);
  });

  it('a grant destroyed through the model is gone after restart', async () => {
    const { grantId } = await issueRefreshToken(await newUser(`user-destroyed-${Date.now()}`));
    const grant = await app.custos.provider().Grant.find(grantId);
    await grant!.destroy();
    await app.restart();
    expect(await app.custos.provider().Grant.find(grantId)).toBeUndefined();
  });
});
