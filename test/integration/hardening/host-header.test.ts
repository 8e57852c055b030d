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

/** Every absolute URL in a text. */
const urlsIn = (text: string) => [...text.matchAll(/https?:\/\/[^"'\s<>\\]+/g)].map((match) => match[0]);

describe('every emitted URL derives from the issuer, never from the Host header (issue 10 #1)', () => {
  it.each(['evil.example', 'evil.example:8443', '127.0.0.1', `${'a'.repeat(40)}.example`])('discovery with Host: %s', async (given) => {
    const response = await rawRequest(app, `GET /.well-known/openid-configuration HTTP/1.1\r\nHost: ${given}`);
    expect(response.status).toBe(200);
    const metadata = JSON.parse(response.body) as Record<string, unknown>;
    expect(metadata.issuer).toBe(app.issuer);
    const urls = urlsIn(response.body);
    expect(urls.length).toBeGreaterThan(5);
    for (const url of urls) expect(url.startsWith(`${app.issuer}/`) || url === app.issuer, url).toBe(true);
  });

  it('an absolute-form request target does not choose the origin either (RFC 9112 §3.2.2)', async () => {
    const response = await rawRequest(app, `GET https://evil.example/.well-known/oauth-authorization-server HTTP/1.1\r\nHost: evil.example`);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).token_endpoint).toBe(`${app.issuer}/token`);
  });

  it('the logout page posts to the issuer whatever the Host', async () => {
    const response = await rawRequest(app, `GET /session/end HTTP/1.1\r\nHost: evil.example`);
    expect(response.status).toBe(200);
    expect(response.body).toContain(`action="${app.issuer}/session/end/confirm"`);
    expect(response.body).not.toContain('evil.example');
  });

  it('the redirect of an authorization request stays on the issuer', async () => {
    const response = await rawRequest(app, `GET /auth?${WEB_BFF_AUTHORIZATION} HTTP/1.1\r\nHost: evil.example`);
    expect(response.status).toBe(303);
    const location = /^location: (.+)$/im.exec(response.headers)?.[1]?.trim();
    expect(location).toBeDefined();
    expect(new URL(location!, app.issuer).origin).toBe(new URL(app.issuer).origin);
  });

  it.each([
    ['userinfo and a foreign host', `${'localhost'}:1@evil.example`],
    ['a tab', 'localhost\tx'],
    ['a space', 'local host'],
    ['a path', 'evil.example/x'],
    ['nothing', ''],
  ])('a Host with %s gets 400', async (_name, given) => {
    const response = await rawRequest(app, `GET /.well-known/openid-configuration HTTP/1.1\r\nHost: ${given}`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error).toBe('invalid_request');
  });

  it('two Host headers get 400', async () => {
    const response = await rawRequest(app, `GET /jwks HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example`);
    expect(response.status).toBe(400);
  });

  it('the configured host itself is served as usual', async () => {
    const response = await rawRequest(app, `GET /jwks HTTP/1.1\r\nHost: ${host}`);
    expect(response.status).toBe(200);
  });
});
