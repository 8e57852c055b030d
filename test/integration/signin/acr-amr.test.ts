import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { ACR_MFA, ACR_PWD, createAccessTokenVerifier, VerifyError } from '../../../src/verify/index.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { newJar, redeemCode } from '../../helpers/code-flow.js';
import { authorize, submit } from '../../helpers/signin-flow.js';
import { exchange, refresh, tokenEndpoint } from '../../helpers/user-tokens.js';

let app: TestApp;
let userId: string;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  app = await startTestApp();
  const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  userId = (await users.create({ username: 'ada', password: PASSWORD }, { actor: 'cli', initiatingEntity: 'admin' })).id;
});
afterAll(() => app?.stop());

describe('acr, amr and auth_time of a password sign-in', () => {
  it('are in the ID token, the access token, its introspection, refreshed tokens and resume tokens', async () => {
    const before = Math.floor(Date.now() / 1000);
    const jar = newJar();
    const login = await authorize(app, jar);
    expect(login.status).toBe(200);
    const done = await submit(app, jar, login, 'login', { username: 'ada', password: PASSWORD });
    expect(done.code).toBeTruthy();
    const tokens = await redeemCode(app, done.code!);
    expect(tokens.status).toBe(200);

    const idToken = decodeJwt(tokens.body.id_token);
    expect(idToken).toMatchObject({ sub: userId, acr: ACR_PWD, amr: ['pwd'] });
    expect(idToken.auth_time).toBeGreaterThanOrEqual(before);

    const access = decodeJwt(tokens.body.access_token);
    expect(access).toMatchObject({ sub: userId, acr: ACR_PWD, amr: ['pwd'], auth_time: idToken.auth_time });

    const introspected = await tokenEndpoint(app, '/token/introspection', { token: tokens.body.access_token }, { client: 'orders-api' });
    expect(introspected.body).toMatchObject({ active: true, acr: ACR_PWD, amr: ['pwd'], auth_time: idToken.auth_time });

    expect(tokens.body.refresh_token).toBeTruthy();
    const refreshed = await refresh(app, tokens.body.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(refreshed.body.access_token)).toMatchObject({ acr: ACR_PWD, amr: ['pwd'], auth_time: idToken.auth_time });
    expect(decodeJwt(refreshed.body.id_token)).toMatchObject({ acr: ACR_PWD, amr: ['pwd'], auth_time: idToken.auth_time });

    const resume = await exchange(app, 'orders-api', tokens.body.access_token);
    expect(resume.status).toBe(200);
    expect(decodeJwt(resume.body.access_token)).toMatchObject({ sub: userId, acr: ACR_PWD, amr: ['pwd'], auth_time: idToken.auth_time });
    const chained = await exchange(app, 'billing-worker', resume.body.access_token, { order: 1, step: 2 });
    expect(chained.status).toBe(200);
    expect(decodeJwt(chained.body.access_token)).toMatchObject({ acr: ACR_PWD, amr: ['pwd'] });
  });

  it('discovery lists the documented acr values', async () => {
    const response = await request(`${app.issuer}/.well-known/openid-configuration`, { dispatcher: app.agent() });
    const body = (await response.body.json()) as { acr_values_supported?: string[] };
    expect(body.acr_values_supported).toEqual(['urn:custos:acr:pwd', 'urn:custos:acr:mfa', 'urn:custos:acr:phr']);
  });

  it('max_age=0 asks a signed-in user for the password again; acr_values within the session does not', async () => {
    const jar = newJar();
    const first = await submit(app, jar, await authorize(app, jar), 'login', { username: 'ada', password: PASSWORD });
    expect(first.code).toBeTruthy();
    const again = await authorize(app, jar, { acr_values: ACR_PWD });
    expect(again.code).toBeTruthy();
    const aged = await authorize(app, jar, { max_age: '0' });
    expect(aged.status).toBe(200);
    expect(aged.page).toContain('name="password"');
  });

  it('custos/verify refuses a password token where mfa or a recent sign-in is required, with the RFC 9470 challenge', async () => {
    const jar = newJar();
    const done = await submit(app, jar, await authorize(app, jar), 'login', { username: 'ada', password: PASSWORD });
    const tokens = await redeemCode(app, done.code!);
    const verifier = createAccessTokenVerifier({ issuer: app.issuer, audience: 'https://api.custos.test/orders', jwks: publicJwks(app.custos.keys()), requireBinding: false });

    // Without a requirement, and with one the token meets, it verifies.
    await expect(verifier.verify(tokens.body.access_token)).resolves.toMatchObject({ acr: ACR_PWD });
    await expect(verifier.verify(tokens.body.access_token, { acr: ACR_PWD, maxAge: 600 })).resolves.toMatchObject({ amr: ['pwd'] });

    const weak = await verifier.verify(tokens.body.access_token, { acr: ACR_MFA }).catch((error: unknown) => error);
    expect(weak).toBeInstanceOf(VerifyError);
    const error = weak as VerifyError;
    expect(error.code).toBe('insufficient_user_authentication');
    expect(error.status).toBe(401);
    expect(error.wwwAuthenticate()).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A stronger or more recent user authentication is required", acr_values="urn:custos:acr:mfa urn:custos:acr:phr"',
    );

    // Signed in "before" max_age seconds: a negative max_age can never be met.
    const old = (await verifier.verify(tokens.body.access_token, { maxAge: -60 }).catch((e: unknown) => e)) as VerifyError;
    expect(old.code).toBe('insufficient_user_authentication');
    expect(old.wwwAuthenticate()).toContain(', max_age=0');
    expect(old.wwwAuthenticate()).not.toContain('acr_values');
  });
});
