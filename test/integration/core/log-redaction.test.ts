import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, formBody, startTestApp, type TestApp } from '../../helpers/app.js';
import { clientSecretPostClient, configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';

const POST_CLIENT: [string, string] = ['post-client', 'post-client-secret-Zq8Xw3Kp9Lm2'];

let app: TestApp;
let config: TempConfigDir;
beforeAll(async () => {
  // The demo config plus one client_secret_post client (the demo has none).
  config = await configDirWithClients([await clientSecretPostClient(POST_CLIENT)]);
  // The most verbose level: whatever any layer logs, it must not carry secrets.
  app = await startTestApp({ configDir: config.dir, env: { LOG_LEVEL: 'trace' } });
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

async function post(pathname: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await request(`${app.issuer}${pathname}`, {
    method: 'POST',
    dispatcher: app.agent(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: formBody(form),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
}

const basicHeader = ([id, secret]: [string, string]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('secrets never reach the logs', () => {
  it('client secrets (basic and post), authorization headers and issued tokens are absent from every log line', async () => {
    const logsBefore = app.logs.length;

    const viaBasic = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    expect(viaBasic.status).toBe(200);
    const viaPost = await post('/token', {
      grant_type: 'client_credentials',
      scope: 'orders:read',
      client_id: POST_CLIENT[0],
      client_secret: POST_CLIENT[1],
    });
    expect(viaPost.status).toBe(200);
    const tokens = [viaBasic.body.access_token as string, viaPost.body.access_token as string];

    // Failures log more (debug/trace); they must not leak either.
    const wrongPostSecret = 'wrong-post-secret-Qv7Yt2Hs5Nc1';
    expect((await post('/token', { grant_type: 'client_credentials', client_id: POST_CLIENT[0], client_secret: wrongPostSecret })).status).toBe(401);
    const wrongBasicSecret = 'wrong-basic-secret-Mb4Rf8Jd6Wx0';
    expect((await app.token({ grant_type: 'client_credentials' }, { basic: [DEMO.reportingJob[0], wrongBasicSecret] })).status).toBe(401);
    // The basic client's secret in the body (oidc-provider accepts either secret method), and tokens presented to introspection/revocation.
    expect((await post('/token', { grant_type: 'client_credentials', client_id: DEMO.reportingJob[0], client_secret: DEMO.reportingJob[1] })).status).toBeLessThan(500);
    expect((await post('/token/introspection', { token: tokens[0]! }, { authorization: basicHeader(DEMO.reportingJob) })).status).toBe(200);
    expect((await post('/token/revocation', { token: tokens[1]! }, { authorization: basicHeader(DEMO.reportingJob) })).status).toBeLessThan(500);
    // A token in a query string (logged paths must not include it).
    const query = await request(`${app.issuer}/jwks?access_token=${tokens[0]}&client_secret=${DEMO.reportingJob[1]}`, { dispatcher: app.agent() });
    await query.body.dump();

    const logs = app.logs.slice(logsBefore).join('');
    // The logs did record these requests (otherwise the checks below prove nothing).
    const lines = logs.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.filter((line) => line.msg === 'request' && line.path === '/token').length).toBeGreaterThanOrEqual(5);
    expect(lines.some((line) => line.clientId === POST_CLIENT[0])).toBe(true);

    const secrets = [
      DEMO.reportingJob[1],
      POST_CLIENT[1],
      wrongPostSecret,
      wrongBasicSecret,
      encodeURIComponent(POST_CLIENT[1]),
      Buffer.from(`${DEMO.reportingJob[0]}:${DEMO.reportingJob[1]}`).toString('base64'),
      Buffer.from(`${DEMO.reportingJob[0]}:${wrongBasicSecret}`).toString('base64'),
    ];
    for (const secret of secrets) expect(logs, 'a client secret is in the logs').not.toContain(secret);
    for (const token of tokens) {
      expect(logs, 'an access token is in the logs').not.toContain(token);
      // Not even its signature or payload part.
      for (const part of token.split('.').slice(1)) expect(logs).not.toContain(part);
    }
  });

  it('every line of a request carries its request id, the one its response echoes', async () => {
    const logsBefore = app.logs.length;
    const known = await request(`${app.issuer}/interaction/no-such-interaction`, { dispatcher: app.agent(), headers: { 'x-request-id': 'trace-me-1' } });
    await known.body.dump();
    expect(known.headers['x-request-id']).toBe('trace-me-1');
    const made = await request(`${app.issuer}/jwks`, { dispatcher: app.agent(), headers: { 'x-request-id': 'not a valid id' } });
    await made.body.dump();
    const madeId = String(made.headers['x-request-id']);
    expect(madeId).toMatch(/^[0-9a-f-]{36}$/);

    const lines = app.logs
      .slice(logsBefore)
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const first = lines.filter((line) => line.requestId === 'trace-me-1');
    // The page's own debug line (written through the request's logger) and the access line.
    expect(first.map((line) => line.msg)).toEqual(['interaction not found', 'request']);
    expect(first[1]).toMatchObject({ method: 'GET', path: '/interaction/no-such-interaction', status: 400 });
    expect(lines.filter((line) => line.requestId === madeId)).toEqual([expect.objectContaining({ msg: 'request', path: '/jwks', status: 200 })]);
  });
});
