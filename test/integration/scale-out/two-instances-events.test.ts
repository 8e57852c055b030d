import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { RELAY_LOCK_KEY } from '../../../src/events/relay-lock.repository.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { createSecurityEventVerifier } from '../../../src/verify/index.js';
import { CLUSTER_ISSUER, startCluster, type Cluster, type Instance } from '../../helpers/instances.js';
import { brokerUnavailable, readTopic, testBroker, uniqueTopic, type TestBroker } from '../../helpers/pulsar.js';

// Several real `custos serve` processes on one PostgreSQL, each configured with the same Pulsar
// sink: only one relay publishes at a time; when it stops (gracefully, then by a crash) another
// takes over, and the consumer gets every IAM event once, each user's in commit order.
const by = { actor: 'cli', initiatingEntity: 'admin' as const };

interface LogLine {
  msg?: string;
  time?: number;
  signal?: string;
}

function logLines(instance: Instance): LogLine[] {
  return instance
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Times at which `instance` logged that its relay took the lock and publishes. */
function activations(instance: Instance): number[] {
  return logLines(instance)
    .filter((line) => line.msg === 'event relay active')
    .map((line) => line.time!);
}

/** A value of the instance's own `/metrics` (Prometheus text; the test connects from loopback). */
async function metric(instance: Instance, name: string): Promise<number> {
  const response = await request(`${CLUSTER_ISSUER}/metrics`, { dispatcher: instance.agent() });
  const text = await response.body.text();
  expect(response.statusCode, text).toBe(200);
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  expect(value, `${name} at ${instance.name}`).toBeDefined();
  return Number(value);
}

const published = (instance: Instance) => metric(instance, 'custos_events_published_total');

describe.skipIf(brokerUnavailable)('two instances on one PostgreSQL: one events relay, taken over when it stops', () => {
  let broker: TestBroker;
  let cluster: Cluster;
  let db: Kysely<Database>;
  const topic = uniqueTopic('cluster');
  let writing = true;

  /** Session-level advisory locks on the relay key in this cluster's database (the active relays). */
  async function relayLocksHeld(): Promise<number> {
    const key = BigInt.asUintN(64, RELAY_LOCK_KEY);
    const { rows } = await sql<{ held: string }>`
      select count(*) as held from pg_locks
       where locktype = 'advisory' and granted
         and database = (select oid from pg_database where datname = current_database())
         and classid = ${Number(key >> 32n)} and objid = ${Number(key & 0xffffffffn)} and objsubid = 1`.execute(db);
    return Number(rows[0]!.held);
  }

  beforeAll(async () => {
    broker = await testBroker();
    cluster = await startCluster(2, {
      env: {
        EVENTS_SINK: 'pulsar-ws',
        PULSAR_WS_URL: broker.wsUrl,
        EVENTS_TOPIC: topic,
        EVENTS_POLL_INTERVAL_MS: '200',
        EVENTS_SEND_TIMEOUT_MS: '3000',
        EVENTS_RETRY_MAX_MS: '1000',
      },
    });
    db = createDb(cluster.databaseUrl, { max: 6 });
  }, 300_000);

  afterAll(async () => {
    writing = false;
    await db?.destroy();
    await cluster?.stop();
  });

  it('one relay publishes; SIGTERM and then SIGKILL of the active one hand over; every event arrives once, per-user order kept', async () => {
    const [a, b] = cluster.instances as [Instance, Instance];
    await expect.poll(() => activations(a).length + activations(b).length, { timeout: 15_000 }).toBe(1);
    const [active, standby] = activations(a).length === 1 ? [a, b] : [b, a];
    // Several take-over intervals later the standby still has not taken the lock.
    await sleep(1000);
    expect(activations(standby)).toEqual([]);
    expect(await relayLocksHeld()).toBe(1);

    // IAM changes through the users service (change + audit + outbox event in one transaction),
    // from four concurrent writers (one per user) while the relays change hands.
    const users = createUserService({ db, hasher: createPasswordHasher() });
    await users.createRole({ name: 'orders-reader' }, by);
    await users.createRole({ name: 'orders-writer' }, by);
    const ids: string[] = [];
    for (let index = 0; index < 4; index++) ids.push((await users.create({ username: `member-${index}`, roles: ['orders-reader'] }, by)).id);
    const writers = ids.map(async (id) => {
      let assign = true;
      while (writing) {
        expect((await (assign ? users.assignRole : users.unassignRole)({ id }, 'orders-writer', by)).changed).toBe(true);
        assign = !assign;
        await sleep(15);
      }
    });

    try {
      await expect.poll(() => published(active), { timeout: 30_000 }).toBeGreaterThanOrEqual(20);
      expect(await published(standby)).toBe(0);

      // Graceful stop (a rolling upgrade): the standby takes over after the active one let go.
      await active.kill('SIGTERM');
      const shutdown = logLines(active).find((line) => line.msg === 'shutting down')!;
      expect(shutdown.signal).toBe('SIGTERM');
      await expect.poll(() => activations(standby).length, { timeout: 15_000 }).toBe(1);
      expect(activations(standby)[0]!).toBeGreaterThanOrEqual(shutdown.time!);
      await expect.poll(() => published(standby), { timeout: 30_000 }).toBeGreaterThanOrEqual(20);

      // A third instance joins as a standby, then the active one crashes mid-stream.
      const c = await cluster.add();
      await sleep(1000);
      expect(activations(c)).toEqual([]);
      expect(await published(c)).toBe(0);
      // Backlog gauges come from the active relay only (README "Running in production").
      expect(await metric(c, 'custos_events_outbox_backlog')).toBe(0);
      expect(await relayLocksHeld()).toBe(1);
      const crashedAt = Date.now();
      await standby.kill('SIGKILL');
      await expect.poll(() => activations(c).length, { timeout: 15_000 }).toBe(1);
      expect(activations(c)[0]!).toBeGreaterThanOrEqual(crashedAt);
      await expect.poll(() => published(c), { timeout: 30_000 }).toBeGreaterThanOrEqual(20);
      expect(activations(active)).toHaveLength(1);
      expect(activations(standby)).toHaveLength(1);
    } finally {
      writing = false;
      await Promise.all(writers);
    }

    // Everything written leaves the outbox; the topic holds each event once.
    await expect
      .poll(async () => Number((await db.selectFrom('event_outbox').select(sql<string>`count(*)`.as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow()).n), {
        timeout: 30_000,
      })
      .toBe(0);
    expect(await relayLocksHeld()).toBe(1);
    const rows = await db.selectFrom('event_outbox').select(['event_id', 'subject', 'subject_version', 'sequence_id']).orderBy('sequence_id').execute();
    expect(rows.length).toBeGreaterThanOrEqual(4 + 60);

    const c = cluster.instances[2]!;
    const verifier = createSecurityEventVerifier({ issuer: CLUSTER_ISSUER, audience: 'urn:custos:iam-events', jwks: (await c.get('/jwks')).body });
    const messages = await readTopic(broker, topic, { expect: rows.length, idleMs: 2000, timeoutMs: 60_000 });
    const events = await Promise.all(messages.map(async (message) => ({ message, event: await verifier.verify(message.payload) })));
    const received = events.map(({ event }) => event.id);
    expect(new Set(received).size, 'no event twice at the consumer').toBe(received.length);
    // Every event, in the relay's sequence order (one producer at a time on one topic).
    expect(received).toEqual(rows.map((row) => row.event_id));
    for (const id of ids) {
      const ofUser = events.filter(({ event }) => event.subject === id);
      expect(ofUser.every(({ message }) => message.key === id)).toBe(true);
      const committed = rows.filter((row) => row.subject === id).sort((x, y) => Number(x.subject_version) - Number(y.subject_version));
      expect(ofUser.map(({ event }) => event.id), `order of ${id}'s events`).toEqual(committed.map((row) => row.event_id));
      // The content confirms it: created as reader (account-created, a Custos type the verifier
      // reports as 'unknown'), then the writer role on, off, on, ...
      expect(ofUser.map(({ event }) => event.kind)).toEqual(committed.map((_, index) => (index === 0 ? 'unknown' : 'token-claims-change')));
      expect(ofUser.map(({ event }) => (event.event['claims'] as { roles: string[] }).roles)).toEqual(
        committed.map((_, index) => (index % 2 === 1 ? ['orders-reader', 'orders-writer'] : ['orders-reader'])),
      );
    }
  }, 180_000);
});
