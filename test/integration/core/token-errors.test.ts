import { Readable } from 'node:stream';
import fc from 'fast-check';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, formBody, startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let agent: Agent;
beforeAll(async () => {
  app = await startTestApp();
  agent = app.agent();
  expect(app.custos.config.env.BODY_LIMIT_BYTES).toBe(BODY_LIMIT_BYTES);
});
afterAll(async () => {
  await app?.stop();
});

const FORM = 'application/x-www-form-urlencoded';
/** The default of BODY_LIMIT_BYTES (checked against the running config in beforeAll). */
const BODY_LIMIT_BYTES = 56 * 1024;

interface Reply {
  status: number;
  contentType: string;
  wwwAuthenticate: string;
  text: string;
}

function basic([id, secret]: [string, string]): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** POST raw bytes to /token with exactly the given headers (no helper-added content type). */
async function postToken(body: string | Uint8Array | Readable | undefined, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await request(`${app.issuer}/token`, { method: 'POST', body, headers, dispatcher: agent });
  return {
    status: response.statusCode,
    contentType: String(response.headers['content-type'] ?? ''),
    wwwAuthenticate: String(response.headers['www-authenticate'] ?? ''),
    text: await response.body.text(),
  };
}

/** An OAuth error response (RFC 6749 §5.2): JSON with a string `error`, no internals. */
function expectOAuthError(reply: Reply, status: number | 'any-4xx', error?: string): Record<string, unknown> {
  if (status === 'any-4xx') {
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
  } else {
    expect(reply.status).toBe(status);
  }
  expect(reply.contentType).toMatch(/^application\/json/);
  const body = JSON.parse(reply.text) as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  if (error) expect(body.error).toBe(error);
  expectNoInternals(reply.text);
  return body;
}

function expectNoInternals(text: string): void {
  expect(text).not.toMatch(/\n\s+at\s/);
  expect(text).not.toMatch(/\bat [\w.<>]+ \(/);
  expect(text).not.toContain('node_modules');
  expect(text).not.toContain('"stack"');
  expect(text).not.toContain('/work/');
}

describe('token endpoint errors (RFC 6749 §5.2)', () => {
  it('answers a wrong client secret with 401 invalid_client and a Basic challenge', async () => {
    const reply = await postToken(formBody({ grant_type: 'client_credentials', scope: 'orders:read' }), {
      'content-type': FORM,
      authorization: basic([DEMO.reportingJob[0], 'wrong-secret-wrong-secret']),
    });
    expectOAuthError(reply, 401, 'invalid_client');
    // RFC 6749 §5.2: a client that used the Authorization header gets a matching challenge.
    expect(reply.wwwAuthenticate).toMatch(/^Basic /);
    // Sanity: the same request with the right secret succeeds, so the 401 is about the secret.
    const ok = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    expect(ok.status).toBe(200);
  });

  it('answers an unknown client with 401 invalid_client', async () => {
    const reply = await postToken(formBody({ grant_type: 'client_credentials' }), {
      'content-type': FORM,
      authorization: basic(['no-such-client', 'whatever-secret-value']),
    });
    expectOAuthError(reply, 401, 'invalid_client');
  });

  it.each(['no-such-scope', 'orders:read no-such-scope'])('answers an unknown scope (%s) with 400 invalid_scope, not a token', async (scope) => {
    const { status, body } = await app.token({ grant_type: 'client_credentials', scope }, { basic: DEMO.reportingJob });
    // RFC 6749 §5.2: invalid_scope = "the requested scope is invalid, unknown, malformed, or exceeds ...".
    expect({ status, error: body.error, scope: body.scope }).toEqual({ status: 400, error: 'invalid_scope', scope: undefined });
  });

  it('answers a scope the client is not registered for with 400 invalid_scope', async () => {
    // reporting-job may only ask for orders:read; "orders" exists but is not its scope.
    const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders' }, { basic: DEMO.reportingJob });
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_scope');
  });

  it('answers an unknown resource with 400 invalid_target (RFC 8707 §2)', async () => {
    const { status, body } = await app.token(
      { grant_type: 'client_credentials', scope: 'orders:read', resource: 'https://unknown.custos.test/api' },
      { basic: DEMO.reportingJob },
    );
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_target');
  });

  it('answers a resource the client is not allowed with 400 invalid_target', async () => {
    const { status, body } = await app.token(
      { grant_type: 'client_credentials', resource: DEMO.adminResource },
      { basic: DEMO.reportingJob },
    );
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_target');
  });

  it('answers a resource that is not an absolute URI with 400 invalid_target', async () => {
    const { status, body } = await app.token(
      { grant_type: 'client_credentials', scope: 'orders:read', resource: 'not a uri' },
      { basic: DEMO.reportingJob },
    );
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_target');
  });

  it('rejects repeated parameters with 400 invalid_request', async () => {
    const twice = (extra: Record<string, string | string[]>) =>
      postToken(formBody({ grant_type: 'client_credentials', ...extra }), { 'content-type': FORM, authorization: basic(DEMO.reportingJob) });
    expectOAuthError(
      await postToken(formBody({ grant_type: ['client_credentials', 'client_credentials'] }), {
        'content-type': FORM,
        authorization: basic(DEMO.reportingJob),
      }),
      400,
      'invalid_request',
    );
    expectOAuthError(await twice({ scope: ['orders:read', 'orders:read'] }), 400, 'invalid_request');
    expectOAuthError(
      await postToken(formBody({ grant_type: ['client_credentials', 'authorization_code'] }), {
        'content-type': FORM,
        authorization: basic(DEMO.reportingJob),
      }),
      400,
      'invalid_request',
    );
  });

  it('rejects a missing or unsupported grant_type', async () => {
    expectOAuthError(await postToken(formBody({ scope: 'orders:read' }), { 'content-type': FORM, authorization: basic(DEMO.reportingJob) }), 400, 'invalid_request');
    expectOAuthError(
      await postToken(formBody({ grant_type: 'password', username: 'a', password: 'b' }), { 'content-type': FORM, authorization: basic(DEMO.reportingJob) }),
      400,
      'unsupported_grant_type',
    );
  });

  it('rejects a JSON body with 400 invalid_request', async () => {
    const reply = await postToken(JSON.stringify({ grant_type: 'client_credentials', scope: 'orders:read' }), {
      'content-type': 'application/json',
      authorization: basic(DEMO.reportingJob),
    });
    expectOAuthError(reply, 400, 'invalid_request');
  });

  it('rejects a text/plain body with 400 invalid_request', async () => {
    const reply = await postToken('grant_type=client_credentials&scope=orders:read', {
      'content-type': 'text/plain',
      authorization: basic(DEMO.reportingJob),
    });
    expectOAuthError(reply, 400, 'invalid_request');
  });

  it('rejects malformed form bodies and content types with 4xx OAuth errors', async () => {
    const auth = { authorization: basic(DEMO.reportingJob) };
    const cases: Array<[string | Uint8Array, Record<string, string>]> = [
      ['{"grant_type": "client_credentials"', { 'content-type': FORM }],
      ['%%%&&&===%zz%', { 'content-type': FORM }],
      [new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3, 0x28]), { 'content-type': FORM }],
      ['grant_type=client_credentials', { 'content-type': 'multipart/form-data; boundary=x' }],
      ['grant_type=client_credentials', { 'content-type': 'not a media type' }],
      ['grant_type=client_credentials', { 'content-type': 'application/x-www-form-urlencodedX' }],
      ['', { 'content-type': FORM }],
      ['grant_type=client_credentials&grant_type=', { 'content-type': FORM }],
    ];
    for (const [body, headers] of cases) {
      for (const authHeaders of [auth, {}]) {
        const reply = await postToken(body, { ...headers, ...authHeaders });
        expectOAuthError(reply, 'any-4xx');
      }
    }
  });

  it('never fails with 5xx on odd content-type parameters (lenient charset handling is allowed)', async () => {
    for (const type of [`${FORM}; charset=no-such-charset`, `${FORM}; charset`, `${FORM}; charset=utf-16le`, `${FORM};;;=`]) {
      const reply = await postToken('grant_type=client_credentials&scope=orders%3Aread', { 'content-type': type, authorization: basic(DEMO.reportingJob) });
      if (reply.status === 200) expect(JSON.parse(reply.text)).toHaveProperty('access_token');
      else expectOAuthError(reply, 'any-4xx');
    }
  });

  it('answers token endpoint errors in JSON even when the client prefers HTML (RFC 6749 §5.2)', async () => {
    for (const accept of ['text/html', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8']) {
      const reply = await postToken(formBody({ grant_type: 'client_credentials', scope: 'orders:read' }), {
        'content-type': FORM,
        accept,
        authorization: basic([DEMO.reportingJob[0], 'wrong-secret-wrong-secret']),
      });
      expectOAuthError(reply, 401, 'invalid_client');
    }
  });

  it('keeps metric labels bounded: client-chosen grant_type values do not become label values', async () => {
    const marker = `fuzzgrant${Date.now().toString(36)}`;
    for (let i = 0; i < 5; i += 1) {
      const reply = await postToken(formBody({ grant_type: `${marker}-${i}` }), { 'content-type': FORM, authorization: basic(DEMO.reportingJob) });
      expectOAuthError(reply, 400, 'unsupported_grant_type');
    }
    const response = await request(`${app.issuer}/metrics`, { dispatcher: agent });
    const text = await response.body.text();
    expect(text).toMatch(/custos_token_errors_total\{[^}]*error="unsupported_grant_type"[^}]*\} [1-9]/);
    // Every distinct attacker-chosen string would otherwise create a new time series (memory and scrape growth).
    expect(text).not.toContain(marker);
  });

  it('rejects a body without a content type', async () => {
    expectOAuthError(await postToken(undefined, { authorization: basic(DEMO.reportingJob) }), 400, 'invalid_request');
  });

  it('answers a body over BODY_LIMIT_BYTES with 413 and a JSON error before reading it', async () => {
    const big = formBody({ grant_type: 'client_credentials', scope: 'orders:read', padding: 'x'.repeat(BODY_LIMIT_BYTES + 1) });
    const reply = await postToken(big, { 'content-type': FORM, authorization: basic(DEMO.reportingJob) });
    const body = expectOAuthError(reply, 413);
    expect(body.error).toBe('invalid_request');
    // The same size without credentials, and a JSON body, are refused the same way.
    expectOAuthError(await postToken(big, { 'content-type': FORM }), 413);
    expectOAuthError(await postToken(JSON.stringify({ padding: 'x'.repeat(BODY_LIMIT_BYTES) }), { 'content-type': 'application/json' }), 413);
    // The server still answers normally afterwards.
    expect((await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob })).status).toBe(200);
  });

  it('refuses a 1 MiB body by its declared content-length with 413', async () => {
    const reply = await postToken(Buffer.alloc(1024 * 1024, 'a'), { 'content-type': FORM });
    expectOAuthError(reply, 413);
  });

  it('answers a chunked body (no content-length) that is too large with a 4xx OAuth error', async () => {
    const chunk = Buffer.alloc(8 * 1024, 'a');
    let sent = 0;
    const stream = new Readable({
      read() {
        if (sent >= 2 * BODY_LIMIT_BYTES) {
          this.push(null);
          return;
        }
        sent += chunk.length;
        this.push(sent === chunk.length ? Buffer.from(`grant_type=client_credentials&padding=${chunk.toString().slice(40)}`) : chunk);
      },
    });
    let reply: Reply | undefined;
    let networkError: unknown;
    try {
      reply = await postToken(stream, { 'content-type': FORM, authorization: basic(DEMO.reportingJob) });
    } catch (error) {
      networkError = error;
    }
    expect(networkError).toBeUndefined();
    expectOAuthError(reply!, 'any-4xx');
    // And still serving.
    expect((await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob })).status).toBe(200);
  });

  it('accepts a chunked body (no content-length) under the limit', async () => {
    const stream = Readable.from([Buffer.from('grant_type=client_credentials'), Buffer.from('&scope=orders%3Aread')]);
    const reply = await postToken(stream, { 'content-type': FORM, authorization: basic(DEMO.reportingJob) });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toMatchObject({ token_type: 'Bearer', scope: 'orders:read' });
  });
});

describe('token endpoint under generated input (fast-check)', () => {
  const paramNames = [
    'grant_type',
    'scope',
    'resource',
    'audience',
    'client_id',
    'client_secret',
    'code',
    'code_verifier',
    'redirect_uri',
    'refresh_token',
    'subject_token',
    'subject_token_type',
    'requested_token_type',
    'client_assertion',
    'client_assertion_type',
    'event_payload_hash',
  ];
  const grantTypes = [
    'client_credentials',
    'authorization_code',
    'refresh_token',
    'urn:ietf:params:oauth:grant-type:token-exchange',
    'urn:ietf:params:oauth:grant-type:device_code',
    'password',
    'implicit',
  ];
  const scopes = ['orders:read', 'orders', 'openid', 'offline_access', 'admin', 'resume_orders', 'orders:read orders', ''];
  const resources = [DEMO.ordersResource, DEMO.eventsResource, DEMO.adminResource, 'https://evil.example/', 'urn:x', '#frag', 'http://localhost/'];

  const value = fc.oneof(
    fc.constantFrom(...grantTypes, ...scopes, ...resources, 'reporting-job', 'orders-api', DEMO.reportingJob[1]),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  );
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...paramNames) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });
  const form = fc.array(fc.tuple(key, value), { maxLength: 8 }).map((pairs) => {
    const params = new URLSearchParams();
    for (const [k, v] of pairs) params.append(k, v);
    return params.toString();
  });
  const validForm = fc
    .record({
      grant_type: fc.constantFrom(...grantTypes),
      scope: fc.option(fc.constantFrom(...scopes), { nil: undefined }),
      resource: fc.option(fc.constantFrom(...resources), { nil: undefined }),
    })
    .map((record) => formBody(Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as Record<string, string>));
  const rawText = fc.string({ unit: 'binary', maxLength: 300 });
  const rawBytes = fc.uint8Array({ maxLength: 300 });
  const body = fc.oneof(
    { weight: 3, arbitrary: form },
    { weight: 2, arbitrary: validForm },
    { weight: 1, arbitrary: rawText },
    { weight: 1, arbitrary: rawBytes },
    { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
  );
  // Header values must be ISO-8859-1 without control characters, or the client itself refuses them.
  const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
  const contentType = fc.oneof(
    { weight: 5, arbitrary: fc.constant(FORM) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        `${FORM}; charset=utf-8`,
        `${FORM}; charset=latin1`,
        `${FORM}; charset=utf-16le`,
        `${FORM}; charset=bogus`,
        `${FORM};;;`,
        'APPLICATION/X-WWW-FORM-URLENCODED',
        'application/json',
        'text/plain',
        'multipart/form-data; boundary=----x',
        'application/jwt',
        '*/*',
        '',
      ),
    },
    { weight: 1, arbitrary: headerText },
  );
  const authorization = fc.oneof(
    fc.constant(undefined),
    fc.constant(basic(DEMO.reportingJob)),
    fc.constant(basic(DEMO.webBff)),
    fc.constant(basic([DEMO.reportingJob[0], 'not-the-secret'])),
    headerText.map((text) => `Basic ${text}`),
    fc.uint8Array({ maxLength: 60 }).map((bytes) => `Basic ${Buffer.from(bytes).toString('base64')}`),
    headerText,
  );

  interface Generated {
    body: string | Uint8Array;
    contentType: string | undefined;
    authorization: string | undefined;
  }
  const chaos: fc.Arbitrary<Generated> = fc.record({ body, contentType, authorization });
  // Mostly well-formed requests with some wrong part, so the success path is exercised too.
  const plausible: fc.Arbitrary<Generated> = fc.record({
    body: fc.oneof(validForm, form),
    contentType: fc.constant(FORM),
    authorization: fc.constantFrom(basic(DEMO.reportingJob), basic(DEMO.webBff), basic([DEMO.reportingJob[0], 'not-the-secret'])),
  });
  const examples: Array<[Generated]> = [
    [{ body: formBody({ grant_type: 'client_credentials', scope: 'orders:read' }), contentType: FORM, authorization: basic(DEMO.reportingJob) }],
    [{ body: formBody({ grant_type: 'client_credentials' }), contentType: FORM, authorization: basic([DEMO.reportingJob[0], 'nope']) }],
    [{ body: '{"grant_type":"client_credentials"}', contentType: 'application/json', authorization: basic(DEMO.reportingJob) }],
    [{ body: new Uint8Array([0, 255, 37, 37]), contentType: undefined, authorization: undefined }],
  ];

  it('never answers 5xx; every 4xx is a JSON OAuth error without internals', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(chaos, plausible), async (generated) => {
        const headers: Record<string, string> = {};
        if (generated.contentType) headers['content-type'] = generated.contentType;
        if (generated.authorization !== undefined) headers.authorization = generated.authorization;
        const reply = await postToken(generated.body, headers);
        seen.set(reply.status, (seen.get(reply.status) ?? 0) + 1);
        expect(reply.status).toBeLessThan(500);
        if (reply.status >= 400) {
          expectOAuthError(reply, 'any-4xx');
        } else {
          expect(reply.status).toBe(200);
          expect(JSON.parse(reply.text)).toHaveProperty('access_token');
        }
      }),
      // FUZZ_RUNS=3000 (with --testTimeout) for a longer local search; 150 keeps the suite fast.
      { numRuns: Number(process.env.FUZZ_RUNS ?? 150), examples },
    );
    // The run reached success and several kinds of failure (the examples guarantee each once).
    expect(seen.get(200) ?? 0).toBeGreaterThan(0);
    expect(seen.get(400) ?? 0).toBeGreaterThan(0);
    expect(seen.get(401) ?? 0).toBeGreaterThan(0);
    // And the server is still healthy afterwards.
    expect((await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob })).status).toBe(200);
  });
});
