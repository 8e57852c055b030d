/**
 * The authorization code flow of the demo `web-bff` client driven with plain HTTP (undici, a
 * cookie jar, no redirects followed), for tests that need many real logins quickly:
 *
 *   const jar = newJar();
 *   const code = await loginForCode(app, jar, 'bob', PASSWORD);
 *   const tokens = await redeemCode(app, code);          // access, refresh and ID token
 *   await logout(app, jar);                              // RP-initiated logout, confirmed
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { TestApp } from './app.js';
import { DEMO, formBody } from './demo.js';

/** What the flow needs of a running Custos (a TestApp, or a bench's own wrapper). */
export type FlowTarget = Pick<TestApp, 'issuer' | 'agent' | 'token'>;

export const REDIRECT_URI = 'http://localhost:3000/callback';

/** One browser's cookies (name → value). */
export type Jar = Map<string, string>;

export function newJar(): Jar {
  return new Map();
}

function store(jar: Jar, header: string | string[] | undefined): void {
  for (const cookie of [header ?? []].flat()) {
    const [pair = ''] = cookie.split(';');
    const index = pair.indexOf('=');
    const name = pair.slice(0, index).trim();
    const value = pair.slice(index + 1).trim();
    if (!name) continue;
    if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
    else jar.set(name, value);
  }
}

/** A browser-like request: carries and updates `jar`, follows no redirect. */
export async function browse(app: FlowTarget, jar: Jar, method: 'GET' | 'POST', target: string, form?: Record<string, string>) {
  const url = new URL(target, app.issuer);
  const headers: Record<string, string> = { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') };
  if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const response = await request(url, { method, headers, body: form ? formBody(form) : undefined, dispatcher: app.agent() });
  store(jar, response.headers['set-cookie']);
  const location = response.headers.location;
  const retryAfter = response.headers['retry-after'];
  return {
    status: response.statusCode,
    location: typeof location === 'string' ? location : undefined,
    text: await response.body.text(),
    ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
  };
}

/** The PKCE verifier every code of these helpers is bound to (RFC 7636). */
export const VERIFIER = randomBytes(32).toString('base64url');

/** Signs `username` in (a fresh authorization request, the login form, the resume) and returns the code. */
export async function loginForCode(
  app: FlowTarget,
  jar: Jar,
  username: string,
  password: string,
  scope = 'openid orders orders:read',
  clientId: string = DEMO.webBff[0],
): Promise<string> {
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    // OpenID Connect Core §11: offline_access needs prompt=consent.
    ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
    code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('base64url'),
  });
  const callback = await signIn(app, jar, `/auth?${params}`, username, password);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback}`);
  return code;
}

/**
 * Follows an authorization request (`target`, e.g. `/auth?...` or a PAR `request_uri` URL) through
 * the sign-in page (and a consent page, if one comes) and returns where the provider finally
 * redirects: the client's redirect URI with `code` (or `error`), `state` and `iss`.
 */
export async function signIn(app: FlowTarget, jar: Jar, target: string, username: string, password: string): Promise<URL> {
  let step = await browse(app, jar, 'GET', target);
  if (step.status !== 303 || !step.location) throw new Error(`authorization request: ${step.status} ${step.text}`);
  const interaction = new URL(step.location, app.issuer).pathname;
  if (interaction.startsWith('/interaction/')) {
    const page = await browse(app, jar, 'GET', interaction);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
    if (!csrf) throw new Error(`login page without csrf: ${page.status}`);
    step = await browse(app, jar, 'POST', `${interaction}/login`, { csrf, username, password });
    if (step.status !== 303 || !step.location) throw new Error(`login: ${step.status} ${step.text.slice(0, 300)}`);
    step = await browse(app, jar, 'GET', step.location);
    // A consent prompt (prompt=consent): first-party clients are consented on the page's GET, others confirm.
    if (step.status === 303 && step.location?.startsWith('/interaction/')) {
      const consent = await browse(app, jar, 'GET', step.location);
      if (consent.status === 200) {
        const token = /name="csrf" value="([^"]+)"/.exec(consent.text)?.[1];
        if (!token) throw new Error(`consent page without csrf: ${consent.status}`);
        step = await browse(app, jar, 'POST', `${step.location}/confirm`, { csrf: token });
      } else {
        step = consent;
      }
      if (step.status !== 303 || !step.location) throw new Error(`consent: ${step.status} ${step.text.slice(0, 300)}`);
      step = await browse(app, jar, 'GET', step.location);
    }
  }
  return new URL(step.location ?? '', app.issuer);
}

/** Redeems a code at `/token` as web-bff. */
export function redeemCode(app: FlowTarget, code: string) {
  return app.token({ grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI }, { basic: DEMO.webBff });
}

/** RP-initiated logout of the jar's session at the OP, confirmed by the signed-in user ("yes, sign me out"). */
export async function logout(app: FlowTarget, jar: Jar): Promise<void> {
  const page = await browse(app, jar, 'GET', `/session/end?client_id=${DEMO.webBff[0]}`);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!xsrf) throw new Error(`logout page without xsrf: ${page.status} ${page.text.slice(0, 300)}`);
  const confirmed = await browse(app, jar, 'POST', '/session/end/confirm', { xsrf, logout: 'yes' });
  if (confirmed.status !== 303) throw new Error(`logout confirm: ${confirmed.status} ${confirmed.text.slice(0, 300)}`);
}
