import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startTestApp, WEB_BFF_AUTHORIZATION, type TestApp } from '../../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { BODY_LIMIT_BYTES: '4096' } });
});
afterAll(async () => {
  await app?.stop();
});

/** POSTs a body as a stream of chunks: undici then sends it chunked, with no Content-Length. */
async function postChunked(path: string, chunks: string[], headers: Record<string, string> = {}) {
  const response = await request(`${app.issuer}${path}`, {
    method: 'POST',
    dispatcher: app.agent(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: Readable.from(chunks.map((chunk) => Buffer.from(chunk))),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown> };
}

const basic = `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`;

describe('HTTP semantics agree with the README (issue 10 #12)', () => {
  it('a chunked body over BODY_LIMIT_BYTES gets 413, like a declared one', async () => {
    const chunked = await postChunked('/token', ['grant_type=client_credentials&scope=', ...Array.from({ length: 5 }, () => 'a'.repeat(1000))], {
      authorization: basic,
    });
    expect(chunked.status).toBe(413);
    expect(chunked.body.error).toBe('invalid_request');

    const declared = await request(`${app.issuer}/token`, {
      method: 'POST',
      dispatcher: app.agent(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a'.repeat(5000),
    });
    await declared.body.dump();
    expect(declared.statusCode).toBe(413);
  });

  it('a chunked body within the limit is served', async () => {
    const { status, body } = await postChunked('/token', ['grant_type=client_', 'credentials&scope=orders%3Aread'], { authorization: basic });
    expect(status).toBe(200);
    expect(body.access_token).toEqual(expect.any(String));
  });

  it.each([
    ['GET', '/token', 'POST, OPTIONS'],
    ['PUT', '/jwks', 'GET, HEAD, OPTIONS'],
    ['GET', '/token/introspection', 'POST, OPTIONS'],
    ['DELETE', '/healthz', 'GET, HEAD'],
  ])('%s %s gets 405 with Allow: %s', async (method, path, allow) => {
    const response = await request(`${app.issuer}${path}`, { method: method as 'GET', dispatcher: app.agent() });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(((await response.body.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('a chunked form post to the interaction pages is read like a declared one', async () => {
    const authorization = await request(`${app.issuer}/auth?${WEB_BFF_AUTHORIZATION}`, { dispatcher: app.agent() });
    await authorization.body.dump();
    expect(authorization.statusCode).toBe(303);
    const cookies = ([] as string[]).concat(authorization.headers['set-cookie'] ?? []).map((cookie) => cookie.split(';')[0]).join('; ');
    const page = await request(new URL(String(authorization.headers.location), app.issuer), { dispatcher: app.agent(), headers: { cookie: cookies } });
    const html = await page.body.text();
    const action = /action="([^"]*\/abort)"/.exec(html)?.[1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    expect(action && csrf, html.slice(0, 300)).toBeTruthy();

    const { status, headers } = await postChunked(new URL(action!, app.issuer).pathname, [`csrf=${csrf}`, '&x=1'], { cookie: cookies }).catch(
      async () => ({ status: 0, headers: {} as Record<string, unknown> }),
    );
    expect(status).toBe(303);
    expect(String(headers.location)).toContain('/auth/');
  });

  it('an unknown path is still 404', async () => {
    const response = await request(`${app.issuer}/nothing-here`, { dispatcher: app.agent() });
    await response.body.dump();
    expect(response.statusCode).toBe(404);
  });
});
