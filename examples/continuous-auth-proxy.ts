/**
 * Seed 000's continuous-authorization proxy, done with Custos events (README "IAM events"):
 *
 *   npm run pulsar:standalone            # terminal 1: a local broker on ws://127.0.0.1:8080
 *   npm run example:continuous-auth      # terminal 2
 *
 * Instead of a one-hour cache TTL guarding against lost messages, the proxy
 * (examples/proxy/continuous-auth-proxy.ts)
 * - verifies every request's certificate-bound access token (RFC 8705) with `custos/verify`;
 * - keeps a revocation state fed by signed IAM events (RFC 8417 SETs) read from Pulsar, each
 *   verified against the issuer's JWKS, deduplicated on `jti`, stale ones ignored;
 * - refuses a token whose user was revoked or disabled after it was issued, and fails closed
 *   (503) while its event stream is down for longer than `maxStalenessMs`.
 *
 * The example starts Custos in-process (EVENTS_SINK=pulsar-ws), a backend, and the proxy, calls the
 * proxy as orders-api with Alice's token, revokes Alice's sessions (what the admin API's
 * `DELETE /admin/users/{id}/sessions` records), and shows how soon the proxy refuses the token.
 * It reports only what it saw: each step says what was expected and what came back, and the exit
 * code is 1 when any expected outcome was not observed (or no broker answers: one line, exit 1).
 * Env: PULSAR_WS_URL (default ws://127.0.0.1:8080), EVENTS_TOPIC (default: a fresh topic per run).
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch, request } from 'undici';
import { recordEvent } from '../src/events/outbox.repository.js';
import { describeError } from '../src/cli/describe-error.js';
import { startCustos } from '../src/main.js';
import { certificateThumbprint } from '../src/verify/index.js';
import { startContinuousAuthProxy } from './proxy/continuous-auth-proxy.js';

export { startContinuousAuthProxy, type ContinuousAuthProxyOptions } from './proxy/continuous-auth-proxy.js';

/** Whether a Pulsar broker answers its health check behind `wsUrl` (the WebSocket service shares the web port). */
export async function probeBroker(wsUrl: string): Promise<string | undefined> {
  const web = wsUrl.replace(/^ws/, 'http').replace(/\/$/, '');
  try {
    const response = await fetch(`${web}/admin/v2/brokers/health`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return response.status === 200 ? undefined : `its health check answered HTTP ${response.status}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? (error as Error).message;
  }
}

type Answer = { status: number; body: { error?: string; code?: string; user?: string; [key: string]: unknown } };
const describe = (answer: Answer) => `HTTP ${answer.status} ${JSON.stringify(answer.body)}`;

async function demo(): Promise<boolean> {
  const ORDERS = 'https://api.custos.test/orders';
  const EVENTS_AUDIENCE = 'urn:example:orders-proxy';
  const pulsarWsUrl = process.env.PULSAR_WS_URL ?? 'ws://127.0.0.1:8080';
  const topic = process.env.EVENTS_TOPIC ?? `persistent://public/default/custos-proxy-demo-${Date.now()}`;
  const missing = await probeBroker(pulsarWsUrl);
  if (missing) {
    console.error(`custos: continuous-auth-proxy: no Pulsar broker at ${pulsarWsUrl} (${missing}); start one with \`npm run pulsar:standalone\` or set PULSAR_WS_URL`);
    return false;
  }
  const custos = await startCustos({
    env: {
      ...process.env,
      PORT: process.env.PORT ?? '0',
      ADMIN_PORT: process.env.ADMIN_PORT ?? '0',
      DATA_DIR: process.env.DATA_DIR ?? '.data/example',
      EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54339',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      EVENTS_SINK: 'pulsar-ws',
      PULSAR_WS_URL: pulsarWsUrl,
      EVENTS_TOPIC: topic,
      EVENTS_AUDIENCE: EVENTS_AUDIENCE,
    },
  });
  const backend = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend: 'orders', path: req.url, user: req.headers['x-authenticated-user'] }));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const trustDevCa = new Agent({ connect: { ca: custos.tls.clientCaPem } });
  const served = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch;
  const proxy = await startContinuousAuthProxy({
    issuer: custos.issuer,
    audience: ORDERS,
    jwksUri: `${custos.issuer}/jwks`,
    fetch: served,
    feed: { kind: 'events', pulsarWsUrl, topic, eventsAudience: EVENTS_AUDIENCE },
    backendUrl: `http://127.0.0.1:${(backend.address() as AddressInfo).port}`,
    tls: { certPem: custos.tls.certPem, keyPem: custos.tls.keyPem, clientCaPem: custos.tls.clientCaPem },
    log: (line) => console.log(`   [proxy] ${line}`),
  });
  const ordersApi = custos.devPki!.clients['orders-api']!;
  const client = new Agent({ connect: { ca: custos.tls.clientCaPem, cert: ordersApi.certPem, key: ordersApi.keyPem } });
  const mint = async () => {
    // Alice's token for the orders API, bound to orders-api's certificate (standing in for login + code flow).
    const provider = custos.provider();
    const token = new provider.AccessToken({ accountId: 'alice', client: (await provider.Client.find('web-bff'))!, scope: 'orders', gty: 'authorization_code', grantId: 'example' } as never);
    (token as unknown as Record<string, string>)['x5t#S256'] = certificateThumbprint(ordersApi.certPem);
    token.resourceServer = new provider.ResourceServer(ORDERS, {
      scope: 'orders',
      audience: ORDERS,
      accessTokenTTL: 300,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256', kid: custos.keys().current.kid } },
    });
    return token.save();
  };
  const call = async (token: string): Promise<Answer> => {
    const response = await request(`${proxy.url}/orders/1001`, { dispatcher: client, headers: { authorization: `Bearer ${token}` } });
    return { status: response.statusCode, body: (await response.body.json()) as Answer['body'] };
  };
  const fail = (line: string) => {
    console.log(`   NOT OBSERVED: ${line}`);
    return false;
  };
  try {
    await proxy.ready(10_000);
    const token = await mint();
    console.log("\n== 1. orders-api calls through the proxy with Alice's certificate-bound token");
    const first = await call(token);
    if (first.status !== 200) return fail(`expected HTTP 200, the proxy answered ${describe(first)}`);
    console.log(`   accepted: ${describe(first)}`);

    console.log("\n== 2. an administrator revokes Alice's sessions (IAM change + event in one transaction)");
    const revokedAt = Date.now();
    await custos.db.transaction().execute((trx) =>
      recordEvent(trx, { type: 'session-revoked', userId: 'alice', sessionIds: [], initiatingEntity: 'admin', reasonAdmin: 'demo' }),
    );
    let last: Answer = first;
    while (Date.now() - revokedAt < 10_000) {
      last = await call(token);
      if (last.status === 401 && last.body.code === 'subject_revoked') break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (last.status !== 401 || last.body.code !== 'subject_revoked') {
      return fail(`expected HTTP 401 subject_revoked within 10 s; the last answer was ${describe(last)}`);
    }
    console.log(`   the same token is refused ${Date.now() - revokedAt} ms after the revocation committed: ${describe(last)}`);

    console.log('\n== 3. a token issued after the revocation is accepted');
    while (Math.floor(Date.now() / 1000) <= Math.floor(revokedAt / 1000)) await new Promise((resolve) => setTimeout(resolve, 50));
    const fresh = await call(await mint());
    if (fresh.status !== 200) return fail(`expected HTTP 200, the proxy answered ${describe(fresh)}`);
    console.log(`   accepted: ${describe(fresh)}`);
    return true;
  } finally {
    await client.close();
    await proxy.stop();
    await trustDevCa.close();
    backend.close();
    await custos.stop();
  }
}

if (process.argv[1]?.endsWith('continuous-auth-proxy.ts') && !process.argv[1].includes('/proxy/')) {
  demo().then(
    (observed) => process.exit(observed ? 0 : 1),
    (error: Error) => {
      console.error(`custos: continuous-auth-proxy: ${describeError(error)}`);
      process.exit(1);
    },
  );
}
