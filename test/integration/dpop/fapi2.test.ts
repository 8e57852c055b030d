import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { browse, newJar, REDIRECT_URI, signIn } from '../../helpers/code-flow.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { clientSecretPostClient, configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { tokenEndpoint } from '../../helpers/user-tokens.js';

/**
 * PAR (RFC 9126), RFC 9207 `iss` and the FAPI 2.0 Security Profile for a client registered with
 * `profile: "fapi2"`, driven by openid-client on the happy paths and by hand for the attacks.
 */

const FAPI = 'fapi2-client';
const FAPI_REDIRECT = 'https://fapi-client.custos.test/callback';
const PAR_ONLY = ['par-only-client', 'par-only-client-secret-0123456789'] as [string, string];
const PASSWORD = 'fapi user password 0123';

let config: TempConfigDir;
let app: TestApp;
let clientKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  clientKey = pair.privateKey;
  config = await configDirWithClients([
    {
      client_id: FAPI,
      client_name: 'FAPI 2.0 client (private_key_jwt, DPoP)',
      profile: 'fapi2',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'fapi-1', use: 'sig', alg: 'ES256' }] },
      dpop_bound_access_tokens: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [FAPI_REDIRECT],
      first_party: true,
      scope: 'openid orders orders:read',
      resources: [DEMO.ordersResource],
      default_resource: DEMO.ordersResource,
    },
    {
      ...(await clientSecretPostClient(PAR_ONLY)),
      require_pushed_authorization_requests: true,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      first_party: true,
      scope: 'openid orders:read',
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
  await createUserService({ db: app.custos.db, hasher: createPasswordHasher() }).create(
    { username: 'fapi-user', password: PASSWORD },
    { actor: 'test', initiatingEntity: 'admin' },
  );
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

function trustedFetch() {
  const agent = app.agent();
  return ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch;
}

function fapiClient() {
  return oidc.discovery(new URL(app.issuer), FAPI, undefined, oidc.PrivateKeyJwt(clientKey), { [oidc.customFetch]: trustedFetch() as never });
}

/** PAR (with the DPoP handle's proof, which binds the code: dpop_jkt) → sign-in → the callback URL. */
async function authorize(configuration: oidc.Configuration, DPoP?: oidc.DPoPHandle) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = await oidc.buildAuthorizationUrlWithPAR(
    configuration,
    { redirect_uri: FAPI_REDIRECT, scope: 'openid orders:read', state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' },
    DPoP ? { DPoP } : undefined,
  );
  expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
  const callback = await signIn(app, newJar(), `${url.pathname}${url.search}`, 'fapi-user', PASSWORD);
  return { callback, checks: { pkceCodeVerifier: verifier, expectedState: state } };
}

/** A private_key_jwt client assertion (RFC 7523) signed by hand, with the audience given. */
function clientAssertion(aud: string): Promise<string> {
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: 'fapi-1' })
    .setIssuer(FAPI)
    .setSubject(FAPI)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('1m')
    .sign(clientKey);
}

async function post(path: string, form: Record<string, string>) {
  const response = await undiciFetch(`${app.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    dispatcher: app.agent(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('PAR and RFC 9207', () => {
  it('advertises the PAR endpoint and the iss response parameter', async () => {
    const metadata = (await fapiClient()).serverMetadata();
    expect(metadata.pushed_authorization_request_endpoint).toBe(`${app.issuer}/request`);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
  });

  it('refuses a plain authorization request from a client that requires PAR, and serves it through PAR', async () => {
    const plain = new URLSearchParams({
      client_id: PAR_ONLY[0],
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid orders:read',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const refused = await browse(app, newJar(), 'GET', `/auth?${plain}`);
    expect(refused.status).toBe(303);
    const location = new URL(refused.location ?? '', app.issuer);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('iss')).toBe(app.issuer);

    const configuration = await oidc.discovery(new URL(app.issuer), PAR_ONLY[0], undefined, oidc.ClientSecretPost(PAR_ONLY[1]), {
      [oidc.customFetch]: trustedFetch() as never,
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(configuration, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid orders:read',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await signIn(app, newJar(), `${url.pathname}${url.search}`, 'fapi-user', PASSWORD);
    expect(callback.searchParams.get('iss')).toBe(app.issuer);
    const tokens = await oidc.authorizationCodeGrant(configuration, callback, { pkceCodeVerifier: verifier });
    expect(tokens.token_type).toBe('bearer');
  });

  it('uses a request_uri once', async () => {
    const configuration = await fapiClient();
    const url = await oidc.buildAuthorizationUrlWithPAR(configuration, {
      redirect_uri: FAPI_REDIRECT,
      scope: 'openid orders:read',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    await signIn(app, newJar(), `${url.pathname}${url.search}`, 'fapi-user', PASSWORD);
    const again = await browse(app, newJar(), 'GET', `${url.pathname}${url.search}`);
    // Not redirected: a used request_uri no longer vouches for the redirect URI (RFC 9126 §4).
    expect(again.status).toBe(400);
    expect(again.text).toContain('invalid_request_uri');
  });
});

describe('FAPI 2.0 Security Profile (profile: "fapi2")', () => {
  it('runs PAR → sign-in → DPoP-bound tokens with openid-client, and does not rotate the refresh token', async () => {
    const configuration = await fapiClient();
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(configuration, keyPair);
    const { callback, checks } = await authorize(configuration, DPoP);
    expect(callback.searchParams.get('iss')).toBe(app.issuer);

    const tokens = await oidc.authorizationCodeGrant(configuration, callback, checks, undefined, { DPoP });
    expect(tokens.token_type).toBe('dpop');
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt });
    const introspected = await tokenEndpoint(app, '/token/introspection', { token: tokens.access_token }, { client: 'orders-api' });
    expect(introspected.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt }, client_id: FAPI });

    const refreshToken = tokens.refresh_token!;
    expect(refreshToken).toBeTypeOf('string');
    const first = await oidc.refreshTokenGrant(configuration, refreshToken, undefined, { DPoP });
    expect(decodeJwt(first.access_token).cnf).toEqual({ jkt });
    // Not rotated (FAPI 2.0 §5.3.2.1): a client that lost the answer retries with the same token.
    expect(first.refresh_token ?? refreshToken).toBe(refreshToken);
    const retried = await oidc.refreshTokenGrant(configuration, refreshToken, undefined, { DPoP });
    expect(retried.token_type).toBe('dpop');
  });

  it('refuses a plain authorization request', async () => {
    const plain = new URLSearchParams({
      client_id: FAPI,
      response_type: 'code',
      redirect_uri: FAPI_REDIRECT,
      scope: 'openid orders:read',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const refused = await browse(app, newJar(), 'GET', `/auth?${plain}`);
    expect(new URL(refused.location ?? '', app.issuer).searchParams.get('error')).toBe('invalid_request');
  });

  it('binds the code to the PAR proof key (dpop_jkt): another key cannot redeem it', async () => {
    const configuration = await fapiClient();
    const DPoP = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    const { callback, checks } = await authorize(configuration, DPoP);
    const thief = oidc.getDPoPHandle(configuration, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.authorizationCodeGrant(configuration, callback, checks, undefined, { DPoP: thief })).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('refuses a token request without a DPoP proof (sender-constrained tokens only)', async () => {
    const configuration = await fapiClient();
    const { callback, checks } = await authorize(configuration);
    await expect(oidc.authorizationCodeGrant(configuration, callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('accepts a client assertion only with the issuer as its audience', async () => {
    const form = (assertion: string) => ({
      client_id: FAPI,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      response_type: 'code',
      redirect_uri: FAPI_REDIRECT,
      scope: 'openid orders:read',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const tokenEndpointAudience = await post('/request', form(await clientAssertion(`${app.issuer}/token`)));
    expect([tokenEndpointAudience.status, tokenEndpointAudience.body.error]).toEqual([401, 'invalid_client']);
    const issuerAudience = await post('/request', form(await clientAssertion(app.issuer)));
    expect(issuerAudience.status).toBe(201);
    expect(issuerAudience.body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
  });

  it('requires PKCE at the PAR endpoint', async () => {
    const noPkce = await post('/request', {
      client_id: FAPI,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(app.issuer),
      response_type: 'code',
      redirect_uri: FAPI_REDIRECT,
      scope: 'openid orders:read',
    });
    expect([noPkce.status, noPkce.body.error]).toEqual([400, 'invalid_request']);
  });
});
