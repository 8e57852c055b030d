import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, WEB_BFF_AUTHORIZATION, type TestApp } from '../../helpers/app.js';
import { rawRequest } from '../../helpers/raw-tls.js';

let app: TestApp;
let host: string;
beforeAll(async () => {
  app = await startTestApp();
  host = new URL(app.issuer).host;
});
afterAll(async () => {
  await app?.stop();
});

/** Every public path: back-channel, browser (authorization, resume, logout, interactions) and ops. */
const PATHS = [
  '/',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/jwks',
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/auth',
  '/me',
  '/session/end',
  '/session/end/confirm',
  '/session/end/success',
  '/healthz',
  '/readyz',
  '/metrics',
];
const PARAMS = [
  'client_id', 'client_secret', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'prompt',
  'code_challenge', 'code_challenge_method', 'code', 'code_verifier', 'grant_type', 'refresh_token', 'resource', 'token',
  'token_type_hint', 'post_logout_redirect_uri', 'id_token_hint', 'logout_hint', 'xsrf', 'logout', 'request', 'request_uri',
  'max_age', 'ui_locales', 'claims', 'acr_values', 'login_hint',
];
const KNOWN_VALUES = [
  'web-bff', 'reporting-job', 'orders-api', 'code', 'openid', 'openid offline_access', 'S256', 'plain', 'form_post', 'query',
  'http://localhost:3000/callback', 'http://localhost:3000/', 'https://api.custos.test/orders', 'client_credentials',
  'authorization_code', 'refresh_token', 'login consent', 'none', 'yes', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', '-1', '{"userinfo":{"sub":null}}', '{', '',
];

/** Header values a client can put on the wire: printable ASCII, tabs, Latin-1 bytes (never CR/LF). */
const headerValue = fc.string({ unit: fc.constantFrom(...'\t !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\u00e9\u00ff'.split('')), maxLength: 40 });
/** Parameter values: known good ones, arbitrary text, and text dense in control characters. */
const paramValue = fc.oneof(
  fc.constantFrom(...KNOWN_VALUES),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('a', '=', '&', '%', ' ', '\u0000', '\t', '\u001f', '\u007f', '\u00e9', '\ud800', '\u{1F600}'), maxLength: 12 }),
);
const pair = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.constant('client_id'), fc.constantFrom('web-bff', 'reporting-job', 'orders-api', 'nobody')) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...PARAMS), paramValue) },
);
const form = fc.array(pair, { maxLength: 8 });
/** encodeURIComponent throws on lone surrogates; those go out as raw (invalid UTF-8) percent bytes. */
function component(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return '%ED%A0%80';
  }
}
const encode = (pairs: Array<[string, string]>) => pairs.map(([key, value]) => `${key}=${component(value)}`).join('&');

const request = fc.record({
  method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
  path: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...PATHS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map((uid) => `/auth/${component(uid) || 'x'}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((uid) => `/interaction/${component(uid) || 'x'}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((tail) => `/${component(tail)}`) },
  ),
  query: form,
  body: form,
  host: fc.oneof(
    { weight: 5, arbitrary: fc.constant('__issuer__') },
    { weight: 2, arbitrary: headerValue.map((suffix) => `__issuer__${suffix}`) },
    { weight: 1, arbitrary: fc.constantFrom('evil.example', '127.0.0.1', '[::1]:1', 'localhost:1@evil.example') },
    { weight: 1, arbitrary: headerValue },
  ),
  headers: fc.array(
    fc.tuple(
      fc.constantFrom(
        'Cookie', 'Authorization', 'Content-Type', 'Client-Cert', 'Client-Cert-Chain', 'X-Forwarded-Host', 'X-Forwarded-Proto',
        'Origin', 'Accept', 'X-Request-Id', 'DPoP', 'OAuth-Client-Attestation', 'Accept-Language', 'Referer',
      ),
      fc.oneof(
        headerValue,
        fc.constantFrom(
          'application/x-www-form-urlencoded', 'application/json', 'text/html', '_session=abc; _session.sig=def',
          '_interaction=x; _interaction_resume=y', 'Basic d2ViLWJmZjp4', 'Basic ', 'Bearer abc', ':AAAA:', 'https://evil.example',
        ),
      ),
    ),
    { maxLength: 5 },
  ),
});

describe('public listener under generated requests (issue 10 #2)', () => {
  it('never answers 5xx, for any path, method, query, body or header', async () => {
    const logsBefore = app.logs.length;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const query = encode(r.query);
        const lines = [
          `${r.method} ${r.path}${query ? `?${query}` : ''} HTTP/1.1`,
          `Host: ${r.host.replace('__issuer__', host)}`,
          ...r.headers.map(([name, value]) => `${name}: ${value}`),
        ];
        if (r.method === 'POST' && !r.headers.some(([name]) => name === 'Content-Type')) lines.push('Content-Type: application/x-www-form-urlencoded');
        const response = await rawRequest(app, lines.join('\r\n'), r.method === 'GET' || r.method === 'HEAD' ? '' : encode(r.body));
        expect(response.status, `${lines.join(' | ')} → ${response.body.slice(0, 200)}`).toBeLessThan(500);
        // Nothing the server emits points at a host the client named (issue 10 #1).
        if (r.host === 'evil.example') expect(`${response.headers}\n${response.body}`).not.toContain('evil.example');
      }),
      { numRuns: 500 },
    );
    const errors = app.logs.slice(logsBefore).filter((line) => /"level":50/.test(line));
    expect(errors).toEqual([]);
  });

  it.each([
    ['a Host with a tab, on discovery', 'GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\tx'],
    ['a Host with a tab, on logout', 'GET /session/end HTTP/1.1\r\nHost: localhost\tx'],
    ['a NUL in the logout state', 'GET /session/end?state=%00 HTTP/1.1\r\nHost: __issuer__'],
    ['an unknown resume uid for a known client', 'GET /auth/xyz?client_id=web-bff HTTP/1.1\r\nHost: __issuer__'],
  ])('%s gets a 4xx', async (_name, head) => {
    const response = await rawRequest(app, head.replace('__issuer__', host));
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  it('a NUL in an authorization request is sent back to the client as invalid_request (RFC 6749 §4.1.2.1)', async () => {
    const query = `${WEB_BFF_AUTHORIZATION}&nonce=a%00b`;
    const response = await rawRequest(app, `GET /auth?${query} HTTP/1.1\r\nHost: ${host}`);
    expect(response.status).toBe(303);
    const location = new URL(/^location: (.+)$/im.exec(response.headers)![1]!.trim());
    expect(location.origin + location.pathname).toBe('http://localhost:3000/callback');
    expect(location.searchParams.get('error')).toBe('invalid_request');
  });
});
