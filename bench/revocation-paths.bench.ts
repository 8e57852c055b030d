/**
 * Revocation on every path → introspection inactive, and → event verified at a Pulsar consumer,
 * p50/p99 per path (issue 16):
 *
 *   npm run bench:revocation                   # starts its own Pulsar standalone
 *   PULSAR_WS_URL=ws://127.0.0.1:8080 npm run bench:revocation   # or uses a running one
 *
 * Starts Custos in-process (EVENTS_SINK=pulsar-ws) and a WebSocket consumer on its topic. For each
 * path — RP-initiated logout, RFC 7009 revocation of the refresh token, refresh-token reuse,
 * authorization-code replay, the admin API's DELETE /admin/users/{id}/sessions — it signs a user in
 * through the real code flow (HTTP, no browser), then sends the request that revokes and measures
 * from the moment that request is sent: its response, the first introspection of the access token
 * answering `active: false` (polled back to back), and the consumer verifying the SET. Runs
 * BENCH_REVOCATIONS (default 50) per path, one after another.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, fetch as undiciFetch, request } from 'undici';
import WebSocket from 'ws';
import { benchBroker, percentile } from './bench-broker.js';
import { createPasswordHasher } from '../src/iam/password-hasher.js';
import { createUserService } from '../src/iam/user.service.js';
import { startCustos } from '../src/main.js';
import { createSecurityEventVerifier, type SecurityEvent } from '../src/verify/index.js';
import { loginForCode, logout, newJar, redeemCode, type FlowTarget } from '../test/helpers/code-flow.js';
import { DEMO, formBody } from '../test/helpers/demo.js';

const COUNT = Number(process.env.BENCH_REVOCATIONS ?? 50);
const AUDIENCE = 'urn:custos:bench-consumer';
const PASSWORD = 'bench passphrase for revocation';

const broker = await benchBroker('bench:revocation');
const wsUrl = broker.wsUrl;
const dataDir = await mkdtemp(path.join(tmpdir(), 'custos-bench-revocation-'));
await chmod(dataDir, 0o755); // initdb runs as an unprivileged user when the bench runs as root
const topic = `persistent://public/default/custos-bench-revocation-${Date.now()}`;
const custos = await startCustos({
  env: {
    ...process.env,
    NODE_ENV: 'development',
    PORT: '0',
    ADMIN_PORT: '0',
    DATA_DIR: path.join(dataDir, 'pg'),
    KEYS_DIR: path.join(dataDir, 'keys'),
    EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54351',
    LOG_LEVEL: 'warn',
    EVENTS_SINK: 'pulsar-ws',
    PULSAR_WS_URL: wsUrl,
    EVENTS_TOPIC: topic,
    EVENTS_AUDIENCE: AUDIENCE,
    LOGIN_MAX_FAILURES: '1000',
  },
}).catch(async (error: Error) => {
  // The broker was started by this bench: stop it before giving up.
  console.error(`bench:revocation: Custos did not start: ${error.message}`);
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
  process.exit(1);
});
const ca = custos.tls.clientCaPem;
const plain = new Agent({ connect: { ca } });
const withCert = (name: string) => {
  const cert = custos.devPki?.clients[name];
  if (!cert) throw new Error(`no dev certificate for ${name}`);
  return new Agent({ connect: { ca, cert: cert.certPem, key: cert.keyPem } });
};
const ordersApi = withCert('orders-api');
const adminCli = withCert('admin-cli');
const target: FlowTarget = {
  issuer: custos.issuer,
  agent: () => plain,
  async token(form, options = {}) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (options.basic) headers.authorization = `Basic ${Buffer.from(options.basic.join(':')).toString('base64')}`;
    const response = await request(`${custos.issuer}/token`, { method: 'POST', headers, body: formBody(form), dispatcher: options.agent ?? plain });
    return { status: response.statusCode, body: await response.body.json() };
  },
};

async function active(token: string): Promise<boolean> {
  const response = await request(`${custos.issuer}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: formBody({ client_id: 'orders-api', token }),
    dispatcher: ordersApi,
  });
  return ((await response.body.json()) as { active: boolean }).active;
}

const users = createUserService({ db: custos.db, hasher: createPasswordHasher() });
const by = { actor: 'cli', initiatingEntity: 'admin' as const };
await users.createRole({ name: 'orders-reader' }, by).catch(() => undefined);
const user = await users.create({ username: `bench-${Date.now()}`, password: PASSWORD, roles: ['orders-reader'] }, by);
const adminToken = (await target.token({ grant_type: 'client_credentials', client_id: 'admin-cli', scope: 'admin', resource: 'urn:custos:admin' }, { agent: adminCli })).body
  .access_token as string;

const verifier = createSecurityEventVerifier({
  issuer: custos.issuer,
  audience: AUDIENCE,
  jwksUri: `${custos.issuer}/jwks`,
  fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: plain })) as unknown as typeof fetch,
});
const waiting: Array<{ match: (event: SecurityEvent) => boolean; resolve: (at: number) => void }> = [];
const consumer = new WebSocket(`${wsUrl}/ws/v2/consumer/${topic.replace('persistent://', 'persistent/')}/bench?subscriptionType=Exclusive`);
await new Promise<void>((resolve, reject) => consumer.once('open', () => resolve()).once('error', reject));
consumer.on('message', (data) => {
  const message = JSON.parse(String(data)) as { payload: string; messageId: string };
  consumer.send(JSON.stringify({ messageId: message.messageId }));
  void verifier.verify(Buffer.from(message.payload, 'base64').toString('utf8')).then((event) => {
    const at = performance.now();
    const index = waiting.findIndex((entry) => entry.match(event));
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(at);
  });
});
const eventFor = (match: (event: SecurityEvent) => boolean) => new Promise<number>((resolve) => waiting.push({ match, resolve }));

interface Signed {
  jar: ReturnType<typeof newJar>;
  code: string;
  accessToken: string;
  refreshToken: string;
  sid: string;
}

async function signIn(): Promise<Signed> {
  const jar = newJar();
  const code = await loginForCode(target, jar, user.username, PASSWORD);
  const tokens = await redeemCode(target, code);
  if (tokens.status !== 200) throw new Error(`redeem: ${JSON.stringify(tokens.body)}`);
  const sid = JSON.parse(Buffer.from(tokens.body.access_token.split('.')[1], 'base64url').toString()).sid as string;
  return { jar, code, accessToken: tokens.body.access_token, refreshToken: tokens.body.refresh_token, sid };
}

/** Each path: what to prepare, then the request that revokes. */
const PATHS: Record<string, { prepare?: (signed: Signed) => Promise<void>; revoke: (signed: Signed) => Promise<unknown>; all?: true }> = {
  logout: {
    revoke: async ({ jar }) => logout(target, jar),
  },
  token_revocation: {
    revoke: ({ refreshToken }) =>
      request(`${custos.issuer}/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(DEMO.webBff.join(':')).toString('base64')}` },
        body: formBody({ token: refreshToken, token_type_hint: 'refresh_token' }),
        dispatcher: plain,
      }).then((response) => response.body.text()),
  },
  refresh_token_reuse: {
    prepare: async ({ refreshToken }) => {
      await target.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, { basic: DEMO.webBff });
    },
    revoke: ({ refreshToken }) => target.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, { basic: DEMO.webBff }),
  },
  code_replay: {
    revoke: ({ code }) => redeemCode(target, code),
  },
  admin: {
    all: true,
    revoke: () =>
      request(`https://localhost:${custos.adminPort}/admin/users/${user.id}/sessions`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminToken}` },
        dispatcher: adminCli,
      }).then((response) => response.body.text()),
  },
};

const results: Record<string, unknown> = {};
try {
  for (const [name, pathSpec] of Object.entries(PATHS)) {
    const response: number[] = [];
    const inactive: number[] = [];
    const event: number[] = [];
    for (let i = 0; i < COUNT + 3; i += 1) {
      const signed = await signIn();
      await pathSpec.prepare?.(signed);
      // The admin path's event names the user (every session), the others the one session.
      const arrival = eventFor((e) => e.kind === 'session-revoked' && (pathSpec.all ? e.subject === user.id && !e.sessionId : e.sessionId === signed.sid));
      if (pathSpec.all) await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5)); // the user's cut-off has one-second resolution
      const sent = performance.now();
      await pathSpec.revoke(signed);
      const answered = performance.now();
      while (await active(signed.accessToken)) {
        // polled back to back until the cut-off shows
      }
      const dead = performance.now();
      const received = await arrival;
      if (i < 3) continue; // warm-up
      response.push(answered - sent);
      inactive.push(dead - sent);
      event.push(Math.max(0, received - sent));
    }
    const summary = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return { p50_ms: Number(percentile(sorted, 50).toFixed(2)), p99_ms: Number(percentile(sorted, 99).toFixed(2)), max_ms: Number(sorted.at(-1)!.toFixed(2)) };
    };
    results[name] = { revocations: COUNT, response: summary(response), introspection_inactive: summary(inactive), event_at_consumer: summary(event) };
    console.log(name, JSON.stringify(results[name]));
  }
  console.log(
    JSON.stringify(
      {
        benchmark: 'revoking request sent → its response, → introspection inactive, → SET verified at a Pulsar consumer (pulsar-ws sink), per path',
        paths: results,
        broker: broker.description,
      },
      null,
      2,
    ),
  );
} finally {
  consumer.close();
  await Promise.all([plain.close(), ordersApi.close(), adminCli.close()]);
  await custos.stop();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
}
