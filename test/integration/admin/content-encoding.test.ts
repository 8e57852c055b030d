import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO, formBody, startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let admin: AdminClient;
beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(() => app?.stop());

/** A body that is no valid data of any compression. */
const NOT_COMPRESSED = Buffer.from('not gzip');

async function adminPost(encoding: string, body: Buffer) {
  const response = await request(`${admin.url}/admin/roles`, {
    method: 'POST',
    dispatcher: admin.agent,
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json', 'content-encoding': encoding },
    body,
  });
  const text = await response.body.text();
  return { status: response.statusCode, type: response.headers['content-type'], body: JSON.parse(text) };
}

async function tokenPost(encoding: string, body: Buffer) {
  const [id, secret] = DEMO.reportingJob;
  const response = await request(`${app.issuer}/token`, {
    method: 'POST',
    dispatcher: app.agent(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'content-encoding': encoding,
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    },
    body,
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: JSON.parse(text) };
}

describe('admin API: Content-Encoding', () => {
  it.each(['gzip', 'br', 'deflate'])('%s with a body that is not valid compressed data is 400 with the admin error body', async (encoding) => {
    const { status, type, body } = await adminPost(encoding, NOT_COMPRESSED);
    expect(status).toBe(400);
    expect(type).toMatch(/^application\/json/);
    expect(body).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('Content-Encoding') });
  });

  it('a truncated gzip stream is 400', async () => {
    const whole = gzipSync(JSON.stringify({ name: 'never-created' }));
    const { status, body } = await adminPost('gzip', whole.subarray(0, whole.length - 6));
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it.each(['compress', 'x-gzip', 'gzip, gzip'])('an encoding it does not decode (%s) is 415 unsupported_encoding', async (encoding) => {
    const { status, body } = await adminPost(encoding, NOT_COMPRESSED);
    expect(status).toBe(415);
    expect(body).toEqual({ error: 'unsupported_encoding', error_description: 'unsupported content encoding' });
  });

  it.each([
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
  ] as const)('a valid %s body is still accepted', async (encoding, compress) => {
    const name = `enc-${encoding}`;
    const { status, body } = await adminPost(encoding, compress(Buffer.from(JSON.stringify({ name }))));
    expect(status).toBe(201);
    expect(body.name).toBe(name);
  });

  it('logs no error-level line for a bad compressed body', async () => {
    const before = app.logs.length;
    await adminPost('gzip', NOT_COMPRESSED);
    const errors = app.logs.slice(before).map((line) => JSON.parse(line)).filter((line) => line.level >= 50);
    expect(errors).toEqual([]);
  });
});

describe('public listener: Content-Encoding on /token', () => {
  it.each(['gzip', 'br', 'deflate'])('%s with a body that is not valid compressed data is 400 invalid_request', async (encoding) => {
    const { status, body } = await tokenPost(encoding, NOT_COMPRESSED);
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it('an unknown encoding is 4xx, never 5xx', async () => {
    const { status, body } = await tokenPost('compress', NOT_COMPRESSED);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(typeof body.error).toBe('string');
  });

  it('a gzip form is 400 too (oidc-provider reads its bodies as they arrive; it decodes no content coding)', async () => {
    const { status, body } = await tokenPost('gzip', gzipSync(formBody({ grant_type: 'client_credentials', scope: 'orders:read' })));
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it('logs no error-level line for a bad compressed body', async () => {
    const before = app.logs.length;
    await tokenPost('gzip', NOT_COMPRESSED);
    const errors = app.logs.slice(before).map((line) => JSON.parse(line)).filter((line) => line.level >= 50);
    expect(errors).toEqual([]);
  });
});
