import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { migrateToLatest } from '../../../src/db/migrator.js';
import type { IamEvent } from '../../../src/events/iam-event.js';
import { assignSequenceIds, outboxBacklog, recordEvent } from '../../../src/events/outbox.repository.js';
import { createRelay, type Relay } from '../../../src/events/relay.js';
import { buildSecurityEventClaims, createSetSigner } from '../../../src/events/security-event-token.js';
import { createPulsarWsSink } from '../../../src/events/sinks/pulsar-ws-sink.js';
import { createMetrics } from '../../../src/http/metrics.js';
import { generateSigningKey, publicJwks, type SigningJwk } from '../../../src/keys/signing-keys.js';
import { createSecurityEventVerifier } from '../../../src/verify/index.js';
import { createTestDatabase } from '../../helpers/database.js';
import { brokerUnavailable, readTopic, testBroker, uniqueTopic, type TestBroker } from '../../helpers/pulsar.js';
import { startTcpProxy } from '../../helpers/tcp-proxy.js';

const ISSUER = 'https://custos.test';
const AUDIENCE = 'urn:custos:iam-events';
const logger = pino({ level: process.env.TEST_RELAY_LOG ?? 'silent' });

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Kysely<Database>;
let broker: TestBroker;
let key: SigningJwk;
let nextKey: SigningJwk;
const relays: Relay[] = [];

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const drained = () => waitFor(async () => (await outboxBacklog(db)).count === 0);

function revoked(userId: string, reason?: string): IamEvent {
  return { type: 'session-revoked', userId, sessionIds: [], initiatingEntity: 'admin', reasonAdmin: reason };
}

async function record(event: IamEvent): Promise<string> {
  return db.transaction().execute((trx) => recordEvent(trx, event));
}

function startRelay(topic: string, options: { wsUrl?: string; metrics?: ReturnType<typeof createMetrics> } = {}): Relay {
  const relay = createRelay({
    db,
    databaseUrl: database.url,
    sink: createPulsarWsSink({ url: options.wsUrl ?? broker.wsUrl, topic, producerName: 'custos-relay', sendTimeoutMs: 3000, connectTimeoutMs: 3000 }),
    sign: createSetSigner(() => key),
    issuer: ISSUER,
    audience: AUDIENCE,
    logger,
    metrics: options.metrics?.events,
    pollIntervalMs: 100,
    retryInitialMs: 50,
    retryMaxMs: 500,
  });
  relays.push(relay);
  return relay;
}

async function stopRelays(): Promise<void> {
  await Promise.all(relays.splice(0).map((relay) => relay.stop()));
}

/** Reads the topic and returns the verified events, in broker order. */
async function consume(topic: string, expected: number) {
  const verifier = createSecurityEventVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: publicJwks({ current: key, next: nextKey }) });
  const messages = await readTopic(broker, topic, { expect: expected });
  return Promise.all(
    messages.map(async (message) => ({ message, event: await verifier.verify(message.payload) })),
  );
}

describe.skipIf(brokerUnavailable)('outbox relay → real Pulsar broker (pulsar-ws sink)', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb(database.url, { max: 12 });
    await migrateToLatest(db);
    key = await generateSigningKey();
    nextKey = await generateSigningKey();
    broker = await testBroker();
  }, 300_000);
  afterAll(async () => {
    await stopRelays();
    await db?.destroy();
    await database?.drop();
  });

  it('a rolled-back IAM change leaves no event; a committed one arrives exactly once, signed', async () => {
    const topic = uniqueTopic('commit');
    await expect(
      db.transaction().execute(async (trx) => {
        await recordEvent(trx, revoked('user-rolled-back'));
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    const eventId = await record(revoked('user-1', 'lost device'));
    startRelay(topic);
    await drained();
    await stopRelays();

    const received = await consume(topic, 1);
    expect(received).toHaveLength(1);
    const [{ message, event }] = received as [(typeof received)[number]];
    expect(message.key).toBe('user-1');
    expect(message.properties).toMatchObject({ event_type: 'session-revoked', event_id: eventId, content_type: 'application/secevent+jwt' });
    expect(event).toMatchObject({ id: eventId, subject: 'user-1', kind: 'session-revoked', issuer: ISSUER });
    expect(event.event).toMatchObject({ initiating_entity: 'admin', reason_admin: { en: 'lost device' } });
    const rows = await db.selectFrom('event_outbox').select(['subject', 'published_at', 'sequence_id']).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.published_at).toBeInstanceOf(Date);
  });

  it('a relay that dies between the broker receipt and the mark re-sends with the same ids; the topic holds each once', async () => {
    const topic = uniqueTopic('crash');
    const ids = [await record(revoked('user-2')), await record(revoked('user-3')), await record(revoked('user-2'))];
    // What a relay does before it dies: sequence ids persisted, sent, acknowledged, not marked.
    const rows = await assignSequenceIds(db, 100);
    expect(rows.map((row) => row.eventId)).toEqual(ids);
    const sign = createSetSigner(() => key);
    const doomed = createPulsarWsSink({ url: broker.wsUrl, topic, producerName: 'custos-relay', sendTimeoutMs: 3000 });
    const first = await doomed.publish(
      await Promise.all(
        rows.map(async (row) => ({
          sequenceId: row.sequenceId,
          eventId: row.eventId,
          type: row.type,
          key: row.subject,
          set: await sign(buildSecurityEventClaims({ eventId: row.eventId, txid: row.txid, occurredAt: row.occurredAt, event: row.payload }, { issuer: ISSUER, audience: AUDIENCE })),
        })),
      ),
    );
    // Broker deduplication on producer name + sequence id (docs/event-consumers.md: the test broker runs with brokerDeduplicationEnabled=true).
    expect(first).toEqual({ acknowledged: 3, duplicates: 0, error: undefined });
    await doomed.close();
    expect((await outboxBacklog(db)).count).toBe(3);

    const metrics = createMetrics();
    startRelay(topic, { metrics });
    await drained();
    await stopRelays();
    expect((await metrics.events.duplicates.get()).values[0]?.value).toBe(3);
    const stored = await db.selectFrom('event_outbox').select(['event_id', 'sequence_id']).where('event_id', 'in', ids).execute();
    expect(new Map(stored.map((row) => [row.event_id, Number(row.sequence_id)]))).toEqual(new Map(rows.map((row) => [row.eventId, row.sequenceId])));

    const received = await consume(topic, 3);
    expect(received.map(({ event }) => event.id)).toEqual(ids);
  });

  it('while the broker is unreachable events wait in the outbox, then all arrive in order, once', async () => {
    const topic = uniqueTopic('outage');
    const proxy = await startTcpProxy(Number(new URL(broker.wsUrl).port));
    const metrics = createMetrics();
    try {
      startRelay(topic, { wsUrl: `ws://127.0.0.1:${proxy.port}`, metrics });
      const ids = [await record(revoked('user-4')), await record(revoked('user-5'))];
      await drained();
      await proxy.cut();
      for (let i = 0; i < 5; i += 1) ids.push(await record(revoked(`user-${4 + (i % 2)}`, `during outage ${i}`)));
      await waitFor(async () => ((await metrics.events.publishFailures.get()).values[0]?.value ?? 0) >= 2);
      expect((await outboxBacklog(db)).count).toBe(5);
      await proxy.restore();
      await drained();
      await stopRelays();
      const received = await consume(topic, 7);
      expect(received.map(({ event }) => event.id)).toEqual(ids);
    } finally {
      await proxy.close();
    }
  });

  it('with two relays only one publishes; the other takes over when it stops', async () => {
    const topic = uniqueTopic('two-relays');
    const a = startRelay(topic);
    const b = startRelay(topic);
    await waitFor(() => a.active || b.active);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([a.active, b.active].filter(Boolean)).toHaveLength(1);
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) ids.push(await record(revoked(`user-${i % 3}`)));
    await drained();
    const [active, standby] = a.active ? [a, b] : [b, a];
    await active.stop();
    await waitFor(() => standby.active, 10_000);
    for (let i = 0; i < 5; i += 1) ids.push(await record(revoked(`user-${i % 3}`)));
    await drained();
    await stopRelays();
    const received = await consume(topic, 15);
    expect(received.map(({ event }) => event.id)).toEqual(ids);
    const sequence = await db.selectFrom('event_outbox').select('sequence_id').where('event_id', 'in', ids).orderBy('sequence_id').execute();
    const numbers = sequence.map((row) => Number(row.sequence_id));
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(15);
  });

  it('a row with a lower id that commits later is not skipped, and goes out first', async () => {
    const topic = uniqueTopic('late-commit');
    startRelay(topic);
    const gate = deferred();
    const inserted = deferred();
    const early = db.transaction().execute(async (trx) => {
      const id = await recordEvent(trx, revoked('user-early'));
      inserted.resolve();
      await gate.promise;
      return id;
    });
    await inserted.promise;
    const laterId = await record(revoked('user-later'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The committed row waits: an older transaction is still running.
    const waiting = await db.selectFrom('event_outbox').select(['sequence_id', 'published_at']).where('event_id', '=', laterId).executeTakeFirstOrThrow();
    expect(waiting).toEqual({ sequence_id: null, published_at: null });
    gate.resolve();
    const earlyId = await early;
    await drained();
    await stopRelays();
    const received = await consume(topic, 2);
    expect(received.map(({ event }) => event.id)).toEqual([earlyId, laterId]);
  });

  it("one user's events leave in commit order even when transaction ids disagree", async () => {
    const topic = uniqueTopic('subject-order');
    startRelay(topic);
    const gate = deferred();
    const started = deferred();
    // The first transaction takes its transaction id early, but records its event last.
    const first = db.transaction().execute(async (trx) => {
      await sql`select pg_current_xact_id()`.execute(trx);
      started.resolve();
      await gate.promise;
      return recordEvent(trx, { type: 'roles-changed', userId: 'user-order', roles: ['b'], initiatingEntity: 'admin' });
    });
    await started.promise;
    const second = await db.transaction().execute((trx) =>
      recordEvent(trx, { type: 'roles-changed', userId: 'user-order', roles: ['a'], initiatingEntity: 'admin' }),
    );
    gate.resolve();
    const firstId = await first;
    await drained();
    await stopRelays();
    const received = await consume(topic, 2);
    expect(received.map(({ event }) => event.id)).toEqual([second, firstId]);
    expect(received.map(({ event }) => event.event['claims'])).toEqual([{ roles: ['a'] }, { roles: ['b'] }]);
  });

  it('keeps per-user order across 1,000 events written by concurrent transactions', async () => {
    const topic = uniqueTopic('thousand');
    startRelay(topic);
    const users = Array.from({ length: 10 }, (_, i) => `user-bulk-${i}`);
    await Promise.all(
      Array.from({ length: 20 }, async (_, worker) => {
        for (let i = 0; i < 50; i += 1) {
          await db.transaction().execute(async (trx) => {
            await recordEvent(trx, revoked(users[(worker * 7 + i) % users.length]!, `w${worker}-${i}`));
          });
        }
      }),
    );
    await waitFor(async () => (await outboxBacklog(db)).count === 0, 120_000);
    await stopRelays();
    const versions = new Map(
      (await db.selectFrom('event_outbox').select(['event_id', 'subject_version']).where('subject', 'like', 'user-bulk-%').execute()).map((row) => [
        row.event_id,
        Number(row.subject_version),
      ]),
    );
    expect(versions.size).toBe(1000);
    const messages = await readTopic(broker, topic, { expect: 1000, timeoutMs: 60_000 });
    expect(messages).toHaveLength(1000);
    const seen = new Map<string, number[]>();
    for (const message of messages) {
      const list = seen.get(message.key!) ?? [];
      list.push(versions.get(message.properties['event_id']!)!);
      seen.set(message.key!, list);
    }
    expect(new Set(messages.map((message) => message.properties['event_id'])).size).toBe(1000);
    for (const list of seen.values()) expect(list).toEqual(Array.from({ length: list.length }, (_, i) => i + 1));
  }, 180_000);
});
