import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { ACR_MFA, ACR_PWD } from '../../../src/verify/acr.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { newJar, REDIRECT_URI, VERIFIER, type Jar } from '../../helpers/code-flow.js';
import { clientSecretPostClient, configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { authorize, submit, type Step } from '../../helpers/signin-flow.js';
import { exchange } from '../../helpers/user-tokens.js';

/**
 * A resource server's `require_mfa` / `minimum_acr` (config/resource-servers.json): asked for at
 * the authorization request that names it (step-up asks only for what is missing), enforced at
 * the token endpoint (codes and refresh tokens of a weaker sign-in) and at token exchange (the
 * subject token's acr); client_credentials tokens are not affected.
 */
const PAYROLL = 'https://api.custos.test/payroll';
const PASSWORD = 'correct horse battery';
const BFF: [string, string] = ['payroll-bff', DEMO.webBff[1]];
const JOB: [string, string] = ['payroll-job', 'payroll-job-secret-for-tests'];
let app: TestApp;
let config: TempConfigDir;
let userId: string;

beforeAll(async () => {
  const demo = JSON.parse(await readFile(new URL('../../../config/clients.json', import.meta.url), 'utf8')) as { clients: Array<Record<string, unknown>> };
  const webBff = demo.clients.find((client) => client.client_id === 'web-bff')!;
  config = await configDirWithClients([
    {
      ...webBff,
      client_id: BFF[0],
      client_name: 'Payroll BFF',
      scope: 'openid offline_access orders orders:read payroll',
      resources: [DEMO.ordersResource, PAYROLL],
      backchannel_logout_uri: undefined,
    },
    { ...(await clientSecretPostClient(JOB)), scope: 'payroll', resources: [PAYROLL], default_resource: PAYROLL },
  ]);
  // The payroll API needs two factors; the orders events (token exchange audience) need mfa too.
  const file = path.join(config.dir, 'resource-servers.json');
  const servers = JSON.parse(await readFile(file, 'utf8')) as { resource_servers: Array<Record<string, unknown>> };
  servers.resource_servers.push({ identifier: PAYROLL, scopes: ['payroll'], require_mfa: true });
  servers.resource_servers = servers.resource_servers.map((rs) => (rs.identifier === DEMO.eventsResource ? { ...rs, minimum_acr: ACR_MFA } : rs));
  await writeFile(file, JSON.stringify(servers, null, 2));
  app = await startTestApp({ configDir: config.dir });
  const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  userId = (await users.create({ username: 'kim', password: PASSWORD }, { actor: 'cli', initiatingEntity: 'admin' })).id;
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

function codeAt(secret: string, offsetSeconds = 0): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + offsetSeconds * 1000 });
}

const redeem = (code: string) => app.token({ grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI }, { basic: BFF });
const refresh = (refreshToken: string, extra: Record<string, string> = {}) => app.token({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, { basic: BFF });

async function passwordStep(jar: Jar, extra: Record<string, string> = {}): Promise<Step> {
  const login = await authorize(app, jar, { scope: 'openid offline_access orders payroll', prompt: 'consent', ...extra }, BFF[0]);
  expect(login.page).toContain('name="password"');
  return submit(app, jar, login, 'login', { username: 'kim', password: PASSWORD });
}

describe('minimum acr of a resource server', () => {
  let secret: string;
  let passwordTokens: { access_token: string; refresh_token: string };
  let mfaTokens: { access_token: string; refresh_token: string };

  it('an authorization request naming the resource asks a password-only user to set up a second factor; the token has acr mfa', async () => {
    const jar = newJar();
    const page = await passwordStep(jar, { resource: PAYROLL });
    expect(page.status).toBe(200);
    expect(page.page).toContain('Set up two-step sign-in');
    secret = /class="secret">([A-Z2-7 ]+)</.exec(page.page!)![1]!.replaceAll(' ', '');
    const shown = await submit(app, jar, page, 'enroll-otp', { code: codeAt(secret, -30) });
    const done = await submit(app, jar, shown, 'continue', {});
    expect(done.code).toBeTruthy();
    const tokens = await redeem(done.code!);
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body.access_token)).toMatchObject({ aud: PAYROLL, sub: userId, acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });
  });

  it('a password session asking for the resource is prompted for its code only, then gets the token with acr mfa', async () => {
    const jar = newJar();
    // The default resource (orders) has no minimum: a password is enough.
    const first = await passwordStep(jar);
    expect(first.code).toBeTruthy();
    const tokens = await redeem(first.code!);
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body.access_token)).toMatchObject({ aud: DEMO.ordersResource, acr: ACR_PWD });
    passwordTokens = tokens.body;

    // Without a prompt the session is refused; with one, only the missing factor is asked.
    const silent = await authorize(app, jar, { resource: PAYROLL, prompt: 'none', scope: 'openid payroll' }, BFF[0]);
    expect(silent.error).toBe('login_required');
    const stepUp = await authorize(app, jar, { resource: PAYROLL, scope: 'openid offline_access payroll', prompt: 'consent' }, BFF[0]);
    expect(stepUp.status).toBe(200);
    expect(stepUp.page).toContain('Enter your code');
    expect(stepUp.page).not.toContain('name="password"');
    const done = await submit(app, jar, stepUp, 'otp', { code: codeAt(secret) });
    expect(done.code).toBeTruthy();
    const stepped = await redeem(done.code!);
    expect(stepped.status).toBe(200);
    expect(decodeJwt(stepped.body.access_token)).toMatchObject({ aud: PAYROLL, acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] });
    mfaTokens = stepped.body;

    // The session is mfa now: the orders API gets tokens saying so, without any page.
    const orders = await authorize(app, jar, { scope: 'openid orders' }, BFF[0]);
    expect(orders.code).toBeTruthy();
    const ordersTokens = await redeem(orders.code!);
    expect(decodeJwt(ordersTokens.body.access_token)).toMatchObject({ aud: DEMO.ordersResource, acr: ACR_MFA });
    mfaTokens = { ...mfaTokens, access_token: ordersTokens.body.access_token };
  });

  it('a refresh token of an mfa sign-in gets a token for the resource; one of a password sign-in does not', async () => {
    const ok = await refresh(mfaTokens.refresh_token, { resource: PAYROLL });
    expect(ok.status).toBe(200);
    expect(decodeJwt(ok.body.access_token)).toMatchObject({ aud: PAYROLL, acr: ACR_MFA });
    const refused = await refresh(passwordTokens.refresh_token, { resource: PAYROLL });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
  });

  it('a code or refresh token of a password sign-in granted the resource (before the policy) is refused at the token endpoint, and the refresh token stays usable for the rest', async () => {
    // A grant from before the operator set require_mfa: built through oidc-provider's own models.
    const provider = app.custos.provider();
    const client = (await provider.Client.find(BFF[0]))!;
    const grant = new provider.Grant({ accountId: userId, clientId: BFF[0] });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(DEMO.ordersResource, 'orders');
    grant.addResourceScope(PAYROLL, 'payroll');
    const grantId = await grant.save();
    const authTime = Math.floor(Date.now() / 1000);
    const signin = { accountId: userId, client, grantId, acr: ACR_PWD, amr: ['pwd'], authTime, scope: 'openid offline_access orders payroll' };
    const refreshToken = await new provider.RefreshToken({ ...signin, gty: 'authorization_code', resource: [DEMO.ordersResource, PAYROLL] } as never).save();
    const code = await new provider.AuthorizationCode({
      ...signin,
      redirectUri: REDIRECT_URI,
      codeChallenge: createHash('sha256').update(VERIFIER).digest('base64url'),
      codeChallengeMethod: 'S256',
      resource: PAYROLL,
    } as never).save();

    const refusedCode = await redeem(code);
    expect(refusedCode.status).toBe(400);
    expect(refusedCode.body).toEqual({
      error: 'invalid_target',
      error_description: `${PAYROLL} requires a user sign-in of at least ${ACR_MFA}, the one behind this grant or token is ${ACR_PWD}: sign in again with acr_values=${ACR_MFA}`,
    });
    const refused = await refresh(refreshToken, { resource: PAYROLL });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
    expect(refused.body.error_description).toContain(ACR_MFA);

    // Nothing was consumed or rotated by the refusals: the refresh token still gets an orders token.
    const orders = await refresh(refreshToken, { resource: DEMO.ordersResource });
    expect(orders.status).toBe(200);
    expect(decodeJwt(orders.body.access_token)).toMatchObject({ aud: DEMO.ordersResource, acr: ACR_PWD });
  });

  it('token exchange to an audience with a minimum acr needs a subject token that meets it', async () => {
    const refused = await exchange(app, 'orders-api', passwordTokens.access_token);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
    expect(refused.body.error_description).toContain(`${DEMO.eventsResource} requires a user sign-in of at least ${ACR_MFA}`);

    const resume = await exchange(app, 'orders-api', mfaTokens.access_token);
    expect(resume.status).toBe(200);
    expect(decodeJwt(resume.body.access_token)).toMatchObject({ aud: DEMO.eventsResource, sub: userId, acr: ACR_MFA });
  });

  it('client_credentials tokens for the resource have no user and are not affected', async () => {
    const tokens = await app.token({ grant_type: 'client_credentials', client_id: JOB[0], client_secret: JOB[1], scope: 'payroll', resource: PAYROLL });
    expect(tokens.status).toBe(200);
    const claims = decodeJwt(tokens.body.access_token);
    expect(claims).toMatchObject({ aud: PAYROLL, sub: JOB[0] });
    expect(claims.acr).toBeUndefined();
  });
});
