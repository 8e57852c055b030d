import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { connectTls, rawRequest } from '../../helpers/raw-tls.js';

let app: TestApp;
let host: string;
beforeAll(async () => {
  app = await startTestApp();
  host = new URL(app.issuer).host;
});
afterAll(async () => {
  await app?.stop();
});

describe('slow and noisy clients are bounded (issue 10 #7)', () => {
  it('a connection whose headers never complete is closed soon after the 10 s headers timeout', async () => {
    const socket = await connectTls(app);
    const opened = Date.now();
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.write(`GET /jwks HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `);
    const drip = setInterval(() => socket.writable && socket.write('a'), 1_000);
    try {
      await once(socket, 'close');
    } finally {
      clearInterval(drip);
    }
    const seconds = (Date.now() - opened) / 1000;
    // headersTimeout (10 s) plus at most one check interval (1 s); Node's default interval is 30 s.
    expect(seconds).toBeGreaterThanOrEqual(9.5);
    expect(seconds).toBeLessThan(13);
  }, 45_000);

  it('a flood of Client-Cert headers from an untrusted address writes one warning line, not one per request', async () => {
    const before = app.logs.length;
    for (let i = 0; i < 25; i++) {
      const response = await rawRequest(app, `GET /jwks HTTP/1.1\r\nHost: ${host}\r\nClient-Cert: :AAAA:`);
      expect(response.status).toBe(200);
    }
    const warnings = app.logs.slice(before).filter((line) => line.includes('Client-Cert header from an untrusted address ignored'));
    expect(warnings).toHaveLength(1);
  });
});
