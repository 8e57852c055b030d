import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { EventMetrics } from '../http/metrics.js';
import {
  assignSequenceIds,
  findUnacknowledged,
  markPublished,
  oldestWriteTransaction,
  outboxBacklog,
  prunePublished,
  type OutboxRow,
} from './outbox.repository.js';
import { createOutboxLock } from './outbox-lock.js';
import { RELAY_LOCK_KEY } from './relay-lock.repository.js';
import { buildSecurityEventClaims, type SetSigner } from './security-event-token.js';
import type { EventSink, OutboundEvent } from './sinks/event-sink.js';
import { createWakeableSleep } from './wakeable-sleep.js';

/** Options of {@link createRelay}. */
export interface RelayOptions {
  db: Kysely<Database>;
  /** For the relay's own connection (advisory lock + LISTEN), apart from the pool. */
  databaseUrl: string;
  sink: EventSink;
  sign: SetSigner;
  issuer: string;
  audience: string | string[];
  logger: Logger;
  metrics?: EventMetrics;
  batchSize?: number;
  /** Polling fallback, and how often a standby relay tries to take over. */
  pollIntervalMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Published rows older than this are deleted (checked about once a minute). */
  retentionMs?: number;
  /** How old the oldest unpublished event must be before the relay names the open transaction holding it back (checked about once a minute; default 60). */
  heldBackWarningSeconds?: number;
}

/** A running relay: see {@link createRelay}. */
export interface Relay {
  /** Whether this instance holds the relay lock and publishes. */
  readonly active: boolean;
  /** Publish now instead of at the next notification or poll. */
  wake(): void;
  /** Stops after the batch in flight, releases the lock and closes the sink. */
  stop(): Promise<void>;
}

/**
 * The outbox relay (DESIGN.md "Events"). One instance across all Custos processes publishes: the
 * one whose own PostgreSQL connection holds {@link RELAY_LOCK_KEY}; the others stand by and try
 * again every poll interval (the lock is freed when that connection ends, i.e. when its holder dies).
 *
 * Each round: first re-send rows that hold a sequence id but no publish mark (a previous relay
 * stopped between sending and marking: same event id and sequence id, so the broker drops
 * what it already stored), else give the next publishable rows sequence ids (committed to the
 * database before anything is sent, see {@link assignSequenceIds}); sign each as a SET, send in
 * order, mark published what the broker acknowledged. A failure keeps the rest for the next round,
 * after a capped exponential backoff: events wait in the outbox while the broker is away.
 */
export function createRelay(options: RelayOptions): Relay {
  const log = options.logger.child({ component: 'event-relay' });
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const retryInitialMs = options.retryInitialMs ?? 200;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;
  const heldBackWarningSeconds = options.heldBackWarningSeconds ?? 60;
  let running = true;
  let failures = 0;
  let lastPrune = 0;

  const waits = createWakeableSleep();
  const { wake, sleep } = waits;

  const lock = createOutboxLock({
    databaseUrl: options.databaseUrl,
    key: RELAY_LOCK_KEY,
    applicationName: 'custos-event-relay',
    onNotification: wake,
    onLost: () => {
      if (running) log.warn('relay lock connection lost; standing by');
      void options.sink.close().catch(() => {});
    },
    onUnreachable: (error) => log.warn({ err: error }, 'event relay could not reach the database'),
  });

  async function takeLock(): Promise<boolean> {
    if (!(await lock.acquire())) return false;
    log.info({ sink: options.sink.name }, 'event relay active');
    return true;
  }

  async function send(rows: OutboxRow[]): Promise<boolean> {
    const events: OutboundEvent[] = [];
    for (const row of rows) {
      const claims = buildSecurityEventClaims(
        { eventId: row.eventId, txid: row.txid, occurredAt: row.occurredAt, event: row.payload },
        { issuer: options.issuer, audience: options.audience },
      );
      events.push({ sequenceId: row.sequenceId, eventId: row.eventId, type: row.type, key: row.subject, set: await options.sign(claims) });
    }
    const result = await options.sink.publish(events);
    const done = rows.slice(0, result.acknowledged);
    await markPublished(options.db, done.map((row) => row.id));
    const now = Date.now();
    for (const row of done) options.metrics?.publishLatency.observe(Math.max(0, now - row.occurredAt.getTime()) / 1000);
    options.metrics?.published.inc(done.length);
    if (result.duplicates > 0) {
      options.metrics?.duplicates.inc(result.duplicates);
      log.info({ duplicates: result.duplicates }, 'broker dropped re-sent events as duplicates');
    }
    if (result.error) {
      options.metrics?.publishFailures.inc();
      log.warn({ err: result.error, pending: rows.length - done.length, sink: options.sink.name }, 'event publish failed; will retry');
      return false;
    }
    return true;
  }

  async function round(): Promise<'sent' | 'idle' | 'failed'> {
    let rows = await findUnacknowledged(options.db, batchSize);
    if (rows.length === 0) rows = await assignSequenceIds(options.db, batchSize);
    if (rows.length === 0) return 'idle';
    return (await send(rows)) ? 'sent' : 'failed';
  }

  async function housekeeping(): Promise<void> {
    if (options.metrics) {
      const backlog = await outboxBacklog(options.db);
      options.metrics.backlog.set(backlog.count);
      options.metrics.oldestAge.set(backlog.oldestAgeSeconds);
    }
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      const pruned = await prunePublished(options.db, retentionMs);
      if (pruned > 0) log.debug({ pruned }, 'pruned published events');
      await warnIfHeldBack();
    }
  }

  /** Events wait behind any older open write transaction of this database: name it for the operator. */
  async function warnIfHeldBack(): Promise<void> {
    const backlog = await outboxBacklog(options.db);
    if (backlog.oldestAgeSeconds < heldBackWarningSeconds) return;
    const holder = await oldestWriteTransaction(options.db);
    if (holder && holder.ageSeconds >= heldBackWarningSeconds) {
      log.warn(
        { pending: backlog.count, oldestEventAgeSeconds: Math.round(backlog.oldestAgeSeconds), holder },
        'events are held back by an open transaction of this database; they go out once it ends',
      );
    }
  }

  const loop = (async () => {
    while (running) {
      if (!lock.held && !(await takeLock())) {
        await sleep(pollIntervalMs);
        waits.clear();
        continue;
      }
      waits.clear();
      let outcome: 'sent' | 'idle' | 'failed';
      try {
        outcome = await round();
      } catch (error) {
        log.warn({ err: error }, 'event relay round failed');
        outcome = 'failed';
      }
      await housekeeping().catch((error) => log.debug({ err: error }, 'event housekeeping failed'));
      if (outcome === 'sent') {
        failures = 0;
        continue;
      }
      if (outcome === 'failed') {
        failures += 1;
        const backoff = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(failures - 1, 20));
        // Full jitter keeps several Custos deployments from retrying in lockstep.
        await waits.sleepIgnoringWake(Math.round(backoff / 2 + (Math.random() * backoff) / 2));
        continue;
      }
      failures = 0;
      await sleep(pollIntervalMs);
    }
  })();

  return {
    get active() {
      return lock.held;
    },
    wake,
    async stop() {
      running = false;
      waits.stop();
      await loop;
      await lock.release();
      await options.sink.close().catch((error) => log.warn({ err: error }, 'closing the event sink failed'));
    },
  };
}
