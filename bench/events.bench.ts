/**
 * Revocation → event at a consumer, p50/p99 (issue 9):
 *
 *   npm run bench:events                       # starts its own Pulsar standalone
 *   PULSAR_WS_URL=ws://127.0.0.1:8080 npm run bench:events   # or uses a running one
 *
 * Starts Custos in-process (EVENTS_SINK=pulsar-ws), subscribes a WebSocket consumer to the topic,
 * then performs BENCH_EVENTS (default 1000) revocations one after another and measures, for each,
 * the time from the revocation's commit to the consumer receiving and verifying its SET.
 *
 * `revoke` below records the event the way the admin API's `DELETE /admin/users/{id}/sessions`
 * does (IAM change + outbox row in one transaction). Once the admin API has landed, swap its body
 * for that HTTPS call to include the API's own cost.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import WebSocket from 'ws';
import { benchBroker, percentile } from './bench-broker.js';
import { recordEvent } from '../src/events/outbox.repository.js';
import { startCustos, type RunningCustos } from '../src/main.js';
import { createSecurityEventVerifier } from '../src/verify/index.js';

const COUNT = Number(process.env.BENCH_EVENTS ?? 1000);
const AUDIENCE = 'urn:custos:bench-consumer';

/** One revocation, returning its event id once committed. Swap for the admin API call. */
async function revoke(custos: RunningCustos, userId: string): Promise<string> {
  return custos.db.transaction().execute((trx) =>
    recordEvent(trx, { type: 'session-revoked', userId, sessionIds: [], initiatingEntity: 'admin', reasonAdmin: 'benchmark' }),
  );
}

const broker = await benchBroker('bench:events');
const wsUrl = broker.wsUrl;
const topic = `persistent://public/default/custos-bench-${Date.now()}`;
const custos = await startCustos({
  env: {
    ...process.env,
    PORT: '0',
    DATA_DIR: process.env.DATA_DIR ?? '.data/bench',
    EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54349',
    LOG_LEVEL: 'warn',
    EVENTS_SINK: 'pulsar-ws',
    PULSAR_WS_URL: wsUrl,
    EVENTS_TOPIC: topic,
    EVENTS_AUDIENCE: AUDIENCE,
  },
});
const trustDevCa = new Agent({ connect: { ca: custos.tls.clientCaPem } });
const verifier = createSecurityEventVerifier({
  issuer: custos.issuer,
  audience: AUDIENCE,
  jwksUri: `${custos.issuer}/jwks`,
  fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch,
});
const arrivals = new Map<string, number>();
let arrived: (() => void) | undefined;
const consumer = new WebSocket(`${wsUrl}/ws/v2/consumer/${topic.replace('persistent://', 'persistent/')}/bench?subscriptionType=Exclusive`);
await new Promise<void>((resolve, reject) => consumer.once('open', () => resolve()).once('error', reject));
consumer.on('message', (data) => {
  const message = JSON.parse(String(data)) as { payload: string; messageId: string };
  consumer.send(JSON.stringify({ messageId: message.messageId }));
  void verifier.verify(Buffer.from(message.payload, 'base64').toString('utf8')).then((event) => {
    arrivals.set(event.id, performance.now());
    arrived?.();
  });
});

/** Revokes, then waits for the consumer; returns commit → verified receipt in ms. */
async function measureOne(userId: string): Promise<number> {
  const id = await revoke(custos, userId);
  const committedAt = performance.now();
  while (!arrivals.has(id)) await new Promise<void>((resolve) => (arrived = resolve));
  const latency = arrivals.get(id)! - committedAt;
  arrivals.delete(id);
  return Math.max(0, latency);
}

try {
  // Warm-up: JWKS fetch, producer connection, JIT.
  for (let i = 0; i < 20; i += 1) await measureOne(`warmup-${i}`);
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < COUNT; i += 1) latencies.push(await measureOne(`user-${i % 100}`));
  const total = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(
    JSON.stringify(
      {
        benchmark: 'revocation commit → SET verified at a Pulsar consumer (pulsar-ws sink, WebSocket consumer)',
        revocations: COUNT,
        p50_ms: Number(percentile(latencies, 50).toFixed(2)),
        p90_ms: Number(percentile(latencies, 90).toFixed(2)),
        p99_ms: Number(percentile(latencies, 99).toFixed(2)),
        max_ms: Number(latencies[latencies.length - 1]!.toFixed(2)),
        sequential_revocations_per_s: Number((COUNT / total).toFixed(1)),
        broker: broker.description,
      },
      null,
      2,
    ),
  );
} finally {
  consumer.close();
  await trustDevCa.close();
  await custos.stop();
  await broker.stop();
}
