/**
 * The sign-in pages driven step by step over plain HTTP (undici, a cookie jar, no redirects
 * followed), for tests of factors and step-up:
 *
 *   const jar = newJar();
 *   let step = await authorize(app, jar, { acr_values: ACR_MFA });   // → an interaction page
 *   step = await submit(app, jar, step, 'login', { username, password });
 *   step = await submit(app, jar, step, 'otp', { code });               // → { code } at the callback
 */
import { createHash, randomBytes } from 'node:crypto';
import { browse, REDIRECT_URI, VERIFIER, type FlowTarget, type Jar } from './code-flow.js';
import { DEMO } from './demo.js';

/** Where the browser stands: on an interaction page (its HTML), or back at the client with a code or an error. */
export interface Step {
  status: number;
  /** `/interaction/<uid>` while signing in. */
  interaction?: string;
  page?: string;
  csrf?: string;
  code?: string;
  error?: string;
  /** The Retry-After header of a refused step. */
  retryAfter?: string;
}

async function follow(app: FlowTarget, jar: Jar, location: string | undefined, status: number, text: string): Promise<Step> {
  for (let hops = 0; hops < 10; hops++) {
    if (!location) return { status, page: text };
    const url = new URL(location, app.issuer);
    if (url.pathname.startsWith('/interaction/')) {
      const page = await browse(app, jar, 'GET', url.pathname);
      if (page.status === 303 && page.location) {
        location = page.location;
        continue;
      }
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
      return { status: page.status, interaction: url.pathname, page: page.text, ...(csrf ? { csrf } : {}) };
    }
    if (url.origin === new URL(app.issuer).origin) {
      const next = await browse(app, jar, 'GET', url.pathname + url.search);
      location = next.location;
      status = next.status;
      text = next.text;
      continue;
    }
    const code = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    return { status, ...(code ? { code } : {}), ...(error ? { error } : {}) };
  }
  throw new Error('too many redirects');
}

/** A fresh authorization request of web-bff (or `clientId`, same redirect URI), PKCE bound to {@link VERIFIER}. */
export async function authorize(app: FlowTarget, jar: Jar, extra: Record<string, string> = {}, clientId: string = DEMO.webBff[0]): Promise<Step> {
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid orders orders:read',
    code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('base64url'),
    ...extra,
  });
  const response = await browse(app, jar, 'GET', `/auth?${params}`);
  return follow(app, jar, response.location, response.status, response.text);
}

/** Posts a form of the current interaction page (`action`: login, otp, recovery, ...) and follows the redirects. */
export async function submit(app: FlowTarget, jar: Jar, step: Step, action: string, form: Record<string, string>): Promise<Step> {
  if (!step.interaction || !step.csrf) throw new Error(`not on an interaction page: ${step.status} ${step.page?.slice(0, 300) ?? ''}`);
  const response = await browse(app, jar, 'POST', `${step.interaction}/${action}`, { csrf: step.csrf, ...form });
  if (response.status !== 303) {
    const csrf = /name="csrf" value="([^"]+)"/.exec(response.text)?.[1] ?? step.csrf;
    return { status: response.status, interaction: step.interaction, page: response.text, csrf, ...(response.retryAfter ? { retryAfter: response.retryAfter } : {}) };
  }
  return follow(app, jar, response.location, response.status, response.text);
}
