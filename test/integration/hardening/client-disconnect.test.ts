import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from '../../helpers/admin.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { connectTls } from '../../helpers/raw-tls.js';

/**
 * A client that drops its connection in the middle of a request body is the client's business:
 * it is logged at debug level without a stack, never as an error-level "unhandled error".
 */
let app: TestApp;
beforeAll(async () => {
  // debug: the dropped request must be logged, at debug, without a stack.
  app = await startTestApp({ env: { LOG_LEVEL: 'debug' } });
});
afterAll(() => app?.stop());

const basic = `Basic ${Buffer.from(`${DEMO.reportingJob[0]}:${DEMO.reportingJob[1]}`).toString('base64')}`;

/** Sends the head and part of a body promising `Content-Length: 4096`, waits, then destroys the socket. */
async function dropMidBody(socket: tls.TLSSocket, head: string): Promise<void> {
  socket.on('error', () => {});
  socket.write(`${head}\r\nContent-Length: 4096\r\n\r\ngrant_type=client_cre`);
  await sleep(150);
  socket.destroy();
  await sleep(300);
}

function linesSince(before: number): Array<Record<string, any>> {
  return app.logs.slice(before).map((line) => JSON.parse(line) as Record<string, any>);
}

function connectAdmin(): Promise<tls.TLSSocket> {
  const cert = app.custos.devPki!.clients['admin-cli']!;
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port: app.custos.adminPort, ca: app.custos.tls.clientCaPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem },
      () => resolve(socket),
    );
    socket.once('error', reject);
  });
}

describe('a client dropping the connection mid-request', () => {
  it.each([
    ['POST /token', `POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: ${basic}`],
    ['POST /token/introspection', `POST /token/introspection HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: ${basic}`],
    ['POST /interaction/:uid/login', `POST /interaction/some-uid/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded`],
    ['chunked POST /token', `POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nAuthorization: ${basic}`],
  ])('public listener, %s: no error-level log line, a debug line without a stack', async (_name, head) => {
    const before = app.logs.length;
    const socket = await connectTls(app);
    // A chunked request gets a chunk header first (its Content-Length is ignored: not sent for it).
    if (head.includes('chunked')) {
      socket.on('error', () => {});
      socket.write(`${head}\r\n\r\n100\r\ngrant_type=client_cre`);
      await sleep(150);
      socket.destroy();
      await sleep(300);
    } else {
      await dropMidBody(socket, head);
    }
    const lines = linesSince(before);
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines.filter((line) => line.err?.stack !== undefined)).toEqual([]);
    // The server is fine afterwards.
    expect((await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob })).status).toBe(200);
  });

  it('a chunked body Custos reads itself is logged once, at debug, as a closed connection', async () => {
    const before = app.logs.length;
    const socket = await connectTls(app);
    socket.on('error', () => {});
    socket.write(`POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n100\r\ngrant_type`);
    await sleep(150);
    socket.destroy();
    await sleep(300);
    expect(linesSince(before)).toEqual([expect.objectContaining({ level: 20, msg: 'client closed the connection mid-request', code: 'ECONNRESET' })]);
  });

  it('admin listener, POST /admin/roles: no error-level log line, a debug line without a stack', async () => {
    const before = app.logs.length;
    const token = await adminToken(app, app.clientAgent('admin-cli'));
    const socket = await connectAdmin();
    await dropMidBody(socket, `POST /admin/roles HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}`);
    const lines = linesSince(before);
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines.filter((line) => line.err?.stack !== undefined)).toEqual([]);
    expect(lines).toContainEqual(expect.objectContaining({ level: 20, listener: 'admin', msg: 'client closed the connection mid-request' }));
  });
});
