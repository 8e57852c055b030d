import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';
import { startPulsarStandalone, type PulsarStandalone } from '../../../scripts/pulsar/pulsar-standalone.js';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { migrateToLatest } from '../../../src/db/migrator.js';
import { outboxBacklog, recordEvent } from '../../../src/events/outbox.repository.js';
import { createRelay, type Relay } from '../../../src/events/relay.js';
import { createSetSigner } from '../../../src/events/security-event-token.js';
import { createPulsarWsSink } from '../../../src/events/sinks/pulsar-ws-sink.js';
import { createMetrics } from '../../../src/http/metrics.js';
import { generateSigningKey, publicJwks } from '../../../src/keys/signing-keys.js';
import { createSecurityEventVerifier } from '../../../src/verify/index.js';
import { createTestDatabase } from '../../helpers/database.js';
import { brokerUnavailable, readTopic } from '../../helpers/pulsar.js';

const ISSUER = 'https://custos.test';
const AUDIENCE = 'urn:custos:iam-events';

/**
 * The broker process itself stops (SIGTERM) and starts again on the same ports and data: this
 * file runs its own broker so the run's shared one stays up for the other tests.
 */
describe.skipIf(brokerUnavailable)('broker stopped and restarted', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<Database>;
  let dataDir: string;
  let broker: PulsarStandalone | undefined;
  let relay: Relay | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb(database.url, { max: 6 });
    await migrateToLatest(db);
    dataDir = await mkdtemp(path.join(tmpdir(), 'custos-test-pulsar-restart-'));
  });
  afterAll(async () => {
    await relay?.stop();
    await broker?.stop();
    await db?.destroy();
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('events recorded while the broker is down wait in the outbox and arrive once, in order, after it returns', async () => {
    const ports = { brokerPort: await freePort(), webPort: await freePort() };
    broker = await startPulsarStandalone({ dataDir, ...ports });
    const key = await generateSigningKey();
    const topic = `persistent://public/default/custos-test-restart-${Date.now()}`;
    const metrics = createMetrics();
    relay = createRelay({
      db,
      databaseUrl: database.url,
      sink: createPulsarWsSink({ url: broker.wsUrl, topic, producerName: 'custos-relay', sendTimeoutMs: 3000, connectTimeoutMs: 3000 }),
      sign: createSetSigner(() => key),
      issuer: ISSUER,
      audience: AUDIENCE,
      logger: pino({ level: 'silent' }),
      metrics: metrics.events,
      pollIntervalMs: 100,
      retryInitialMs: 100,
      retryMaxMs: 1000,
    });
    const record = (userId: string) =>
      db.transaction().execute((trx) => recordEvent(trx, { type: 'session-revoked', userId, sessionIds: [], initiatingEntity: 'admin' }));
    const drained = async (timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while ((await outboxBacklog(db)).count > 0) {
        if (Date.now() > deadline) throw new Error('outbox not drained in time');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    const ids = [await record('u1'), await record('u2')];
    await drained(30_000);
    await broker.stop();
    for (let i = 0; i < 6; i += 1) ids.push(await record(`u${1 + (i % 2)}`));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await outboxBacklog(db)).count).toBe(6);
    expect((await metrics.events.publishFailures.get()).values[0]?.value).toBeGreaterThan(0);

    broker = await startPulsarStandalone({ dataDir, ...ports });
    await drained(120_000);
    await relay.stop();
    relay = undefined;

    const verifier = createSecurityEventVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: publicJwks({ current: key, next: await generateSigningKey() }) });
    const messages = await readTopic(broker, topic, { expect: ids.length });
    const received = await Promise.all(messages.map((message) => verifier.verify(message.payload)));
    expect(received.map((event) => event.id)).toEqual(ids);
  }, 420_000);
});
