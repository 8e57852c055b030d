import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSpa, type RunningSpa } from '../../../examples/spa/spa-server.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { freePort } from '../../../scripts/free-port.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';

/**
 * The spa-demo single-page app (examples/spa, `npm run example:spa`, docs/bff-developers.md) in
 * real Chromium: a public client signs in with PKCE, its token is bound with DPoP to a
 * non-extractable WebCrypto key, and its API checks token and proof with custos/verify.
 */

const PASSWORD = 'spa user password 0123';
let config: TempConfigDir;
let app: TestApp;
let spa: RunningSpa;
let browser: TestBrowser;

beforeAll(async () => {
  // The demo registers spa-demo on port 3002; the test registers the same client on a free port.
  const port = await freePort();
  config = await configDirWithClients([
    {
      client_id: 'spa-test',
      token_endpoint_auth_method: 'none',
      dpop_bound_access_tokens: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`http://localhost:${port}/`],
      first_party: true,
      scope: 'openid orders:read',
      resources: [DEMO.ordersResource],
      default_resource: DEMO.ordersResource,
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
  await createUserService({ db: app.custos.db, hasher: createPasswordHasher() }).create({ username: 'spa-user', password: PASSWORD }, { actor: 'test', initiatingEntity: 'admin' });
  const agent = app.agent();
  spa = await startSpa({
    issuer: app.issuer,
    port,
    clientId: 'spa-test',
    fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch,
  });
  if (!BROWSER_UNAVAILABLE) browser = await launchBrowser({ trust: app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await spa?.stop();
  await app?.stop();
  await config?.remove();
});

describe.skipIf(BROWSER_UNAVAILABLE)('the SPA demo: PKCE + DPoP from the browser', () => {
  let token = '';

  it('signs in, gets a DPoP-bound token for a non-extractable key, and calls the API with a proof', async () => {
    const { page } = browser;
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    page.on('response', (response) => {
      if (response.status() >= 400) failures.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(spa.url);
    await page.waitForSelector('#sign-in:not([hidden])');
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#sign-in')]);
    await page.fill('input[name=username]', 'spa-user');
    await page.fill('input[name=password]', PASSWORD);
    // Back at the app (first with ?code=…&state=…&iss=…, which the app then takes off the URL).
    await Promise.all([page.waitForURL((url) => url.origin === spa.url), page.click('button[type=submit]')]);
    await page.waitForSelector('#call-api:not([hidden])').catch(async (error: Error) => {
      throw new Error(`${error.message}; the app says: ${await page.textContent('#status')}; page errors: ${failures.join(' | ')}`);
    });

    expect(await page.textContent('#status')).toContain('Signed in as');
    expect((await page.textContent('#token-type'))?.toLowerCase()).toBe('dpop');
    expect(await page.textContent('#extractable')).toBe('false');
    token = await page.evaluate(() => sessionStorage.getItem('access_token') ?? '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { cnf?: { jkt?: string }; client_id?: string };
    expect(claims.client_id).toBe('spa-test');
    expect(await page.textContent('#jkt')).toBe(claims.cnf?.jkt);

    await page.click('#call-api');
    await page.waitForSelector('#api-section:not([hidden])').catch(async (error: Error) => {
      throw new Error(`${error.message}; the app says: ${await page.textContent('#status')}; page errors: ${failures.join(' | ')}`);
    });
    const answer = (await page.textContent('#api-result')) ?? '';
    expect(answer.startsWith('200')).toBe(true);
    expect(JSON.parse(answer.slice(answer.indexOf('\n') + 1))).toMatchObject({ client_id: 'spa-test', cnf: { jkt: claims.cnf?.jkt } });
    expect(await page.textContent('#status')).toContain('The API accepted');

    const screenshot = await page.screenshot({ fullPage: true });
    expect(screenshot.subarray(1, 4).toString()).toBe('PNG');
    await writeFile(path.join(tmpdir(), 'custos-spa-demo.png'), screenshot);
    expect(failures).toEqual([]);
  }, 60_000);

  it('refuses the copied token at the API: without a proof, or with a proof by another key', async () => {
    expect(token).not.toBe('');
    const url = `${spa.url}/api/orders`;
    const bearer = await undiciFetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP /);

    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const ath = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))).toString('base64url');
    const proof = await new SignJWT({ htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    const thief = await undiciFetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    expect(thief.status).toBe(401);
    expect(await thief.json()).toEqual({ error: 'dpop_binding_mismatch' });
  });

  it('answers CORS at the token endpoint only for the origin of a public client redirect URI', async () => {
    const preflight = (origin: string) =>
      undiciFetch(`${app.issuer}/token`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'dpop,content-type' },
        dispatcher: app.agent(),
      });
    const allowedHeaders = (await preflight(spa.url)).headers.get('access-control-allow-headers') ?? '';
    expect(allowedHeaders.toLowerCase()).toContain('dpop');
    // The actual request from another origin names the client, and is refused for it.
    const foreign = await undiciFetch(`${app.issuer}/token`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'spa-test', code: 'x', code_verifier: 'x'.repeat(43), redirect_uri: `${spa.url}/` }).toString(),
      dispatcher: app.agent(),
    });
    expect(foreign.status).toBe(400);
    expect(((await foreign.json()) as { error: string }).error).toBe('invalid_request');
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });
});
