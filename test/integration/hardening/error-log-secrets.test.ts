import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { rawRequest } from '../../helpers/raw-tls.js';

let app: TestApp;
let host: string;
beforeAll(async () => {
  // The most verbose level: rejected requests log their error at debug.
  app = await startTestApp({ env: { LOG_LEVEL: 'trace' } });
  host = new URL(app.issuer).host;
});
afterAll(async () => {
  await app?.stop();
});

const SECRET = 'client-secret-in-query-Vb73kQ';
const VERIFIER = 'code-verifier-in-query-Lw52pR';
const CODE = 'authorization-code-in-query-Hd94';

describe('no secret reaches an error log line (issue 10 #3)', () => {
  it('requests that fail inside the stack log no query values, from any field', async () => {
    const query = `client_secret=${SECRET}&code_verifier=${VERIFIER}&code=${CODE}`;
    const before = app.logs.length;
    const heads = [
      `GET /.well-known/openid-configuration?${query} HTTP/1.1\r\nHost: localhost\tx`,
      `GET /session/end?state=%00&${query} HTTP/1.1\r\nHost: ${host}`,
      `GET /auth/xyz?client_id=web-bff&${query} HTTP/1.1\r\nHost: ${host}`,
      `GET /token?${query} HTTP/1.1\r\nHost: ${host}`,
      `POST /token?${query} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json`,
    ];
    for (const head of heads) {
      const response = await rawRequest(app, head);
      expect(response.status, head).toBeLessThan(500);
    }
    const logs = app.logs.slice(before).join('');
    // Errors were logged (otherwise the check below proves nothing).
    expect(logs).toMatch(/"err":\{/);
    for (const secret of [SECRET, VERIFIER, CODE]) expect(logs).not.toContain(secret);
  });
});
