/**
 * Login driver of `npm run bench` scenario 8, run as its own process by `bench/run.ts`. Reads one
 * {@link LoginJob} as JSON from argv[2]; `concurrency` virtual browsers each sign in again and
 * again, as the web BFF's users would: authorization request with PKCE → login page → password
 * form → (first-party consent) → redirect with the code → code exchanged at `/token`. Prints a
 * {@link LoginResult} (one latency per completed login) as JSON on stdout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Pool, type Dispatcher } from 'undici';
import type { LoadResult } from './load.js';

export interface LoginJob {
  origin: string;
  ca: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  username: string;
  /**
   * One account per browser (browser i signs in as `usernames[i % length]`), all with `password`;
   * default: every browser as `username`. The login throttle lets at most a few password checks
   * of one account run at once, so many browsers on one account would measure the throttle.
   */
  usernames?: string[];
  password: string;
  concurrency: number;
  /** Measured seconds (after the warm-up). */
  seconds: number;
  /** Unmeasured logins until this time (epoch ms): connections, the server's JIT; the load generator's `startAt`. */
  startAt?: number;
  /** Stop after this many completed logins (sessions for the memory scenario). */
  maxLogins?: number;
  /** Scopes of the authorization request (default `openid`). */
  scope?: string;
  /** Print the access token (and refresh token, if any) of the last login (scenario 5's user tokens). */
  keepAccessToken?: boolean;
}

export interface LoginResult extends LoadResult {
  accessToken?: string;
  refreshToken?: string;
}

const job = JSON.parse(process.argv[2] ?? '{}') as LoginJob;
const origin = new URL(job.origin);
const LOOPBACK = ['127.0.0.1', '[::1]', 'localhost'];
if (!LOOPBACK.includes(origin.hostname)) throw new Error('login driver refuses non-loopback targets');
const pool = new Pool(job.origin, { connections: job.concurrency, connect: { ca: job.ca, servername: 'localhost' } });
const basic = `Basic ${Buffer.from(`${encodeURIComponent(job.clientId)}:${encodeURIComponent(job.clientSecret)}`).toString('base64')}`;

let accessToken: string | undefined;
let refreshToken: string | undefined;

/** One browser: a cookie jar (names only; oidc-provider scopes its cookies by path). */
async function signIn(username: string): Promise<void> {
  const jar = new Map<string, string>();
  const send = async (method: 'GET' | 'POST', target: string, body?: string, headers: Record<string, string> = {}) => {
    const url = new URL(target, job.origin);
    // Custos builds its URLs from the issuer (https://localhost:<port>); the pool connects to the same port on loopback.
    if (url.port !== origin.port || !LOOPBACK.includes(url.hostname)) throw new Error(`unexpected redirect to ${url.origin}`);
    const response: Dispatcher.ResponseData = await pool.request({
      method,
      path: url.pathname + url.search,
      headers: { ...headers, ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}) },
      body,
    });
    for (const cookie of ([] as string[]).concat(response.headers['set-cookie'] ?? [])) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    return { status: response.statusCode, location: response.headers.location as string | undefined, text: await response.body.text() };
  };

  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    client_id: job.clientId,
    response_type: 'code',
    redirect_uri: job.redirectUri,
    scope: job.scope ?? 'openid',
    state: randomBytes(8).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  let step = await send('GET', `/auth?${query}`);
  for (let hops = 0; hops < 10; hops++) {
    if (step.status !== 303 && step.status !== 302) throw new Error(`unexpected ${step.status} in the login flow`);
    const location = step.location!;
    if (location.startsWith(job.redirectUri)) {
      const code = new URL(location).searchParams.get('code');
      if (!code) throw new Error('redirect without a code');
      const token = await send('POST', '/token', new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: job.redirectUri, code_verifier: verifier }).toString(), {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic,
      });
      if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}`);
      if (job.keepAccessToken) ({ access_token: accessToken, refresh_token: refreshToken } = JSON.parse(token.text) as { access_token: string; refresh_token?: string });
      return;
    }
    const page = await send('GET', location);
    if (page.status === 200) {
      // The login page: post the password form with its CSRF token.
      const action = /<form[^>]*action="([^"]*\/login)"/.exec(page.text)?.[1];
      const csrf = /name="csrf"[^>]*value="([^"]+)"/.exec(page.text)?.[1] ?? /value="([^"]+)"[^>]*name="csrf"/.exec(page.text)?.[1];
      if (!action || !csrf) throw new Error('login page without a login form');
      step = await send('POST', action.replaceAll('&amp;', '&'), new URLSearchParams({ username, password: job.password, csrf }).toString(), {
        'content-type': 'application/x-www-form-urlencoded',
      });
    } else {
      step = page;
    }
  }
  throw new Error('login flow did not finish');
}

const latenciesUs: number[] = [];
const failures: Record<string, number> = {};
let errors = 0;
const start = performance.now() + Math.max(0, (job.startAt ?? 0) - Date.now());
const deadline = start + job.seconds * 1000;
await Promise.all(
  Array.from({ length: job.concurrency }, async (_, browser) => {
    const username = job.usernames?.[browser % job.usernames.length] ?? job.username;
    while (performance.now() < deadline && latenciesUs.length < (job.maxLogins ?? Infinity)) {
      const started = performance.now();
      try {
        await signIn(username);
        // Logins begun during the warm-up are not counted.
        if (started >= start) latenciesUs.push(Math.round((performance.now() - started) * 1000));
      } catch (error) {
        if (started < start) continue;
        errors += 1;
        const key = (error as Error).message.slice(0, 80);
        failures[key] = (failures[key] ?? 0) + 1;
      }
    }
  }),
);
await pool.close();
const cpu = process.cpuUsage();
const result: LoginResult = {
  requests: latenciesUs.length,
  errors,
  failures,
  seconds: (performance.now() - start) / 1000,
  latenciesUs,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  accessToken,
  refreshToken,
};
process.stdout.write(JSON.stringify(result));
