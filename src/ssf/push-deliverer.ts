import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { ConfigError } from '../config/config-error.js';
import type { AppConfig } from '../config/load-config.js';
import type { Database } from '../db/database.js';
import { createOutboxLock } from '../events/outbox-lock.js';
import type { SsfMetrics } from '../http/metrics.js';
import {
  clearPushFailures,
  deletePendingSets,
  duePushStreams,
  findPushTarget,
  listPendingSets,
  nextPushDueInMs,
  recordPushFailure,
  streamBacklogs,
  streamsOlderThan,
  type PushTarget,
} from './ssf-stream.repository.js';
import { createPushHostAllowList } from './push-hosts.js';
import { PUSH_DELIVERY, type SsfService } from './ssf.service.js';
import { createWakeableSleep } from '../events/wakeable-sleep.js';

/** Session advisory lock held by the one active SSF push deliverer ("custosp" in ASCII; the relay holds "custos"). */
export const SSF_PUSH_LOCK_KEY = 0x637573746f7370n;

/** Options of {@link createPushDeliverer}. */
export interface PushDelivererOptions {
  db: Kysely<Database>;
  /** For the deliverer's own connection (advisory lock + LISTEN), apart from the pool. */
  databaseUrl: string;
  service: SsfService;
  logger: Logger;
  metrics?: SsfMetrics;
  /** PEM CA certificates trusted for receivers' TLS in addition to Node's bundled roots (SSF_PUSH_CA_FILE). */
  ca?: string;
  /** Per push: connect + response (SSF_PUSH_TIMEOUT_MS). */
  timeoutMs?: number;
  retryInitialMs?: number;
  /** Cap of the exponential backoff after failed pushes (SSF_PUSH_RETRY_MAX_MS). */
  retryMaxMs?: number;
  /** Consecutive transient failures after which the stream is paused (SSF_PUSH_MAX_FAILURES). */
  maxFailures?: number;
  /** Events a paused stream may hold; over it the stream is disabled and drops them (SSF_PAUSED_MAX_EVENTS). */
  pausedMaxEvents?: number;
  /** SSF 1.0 §8.1.1 `inactivity_timeout` (SSF_INACTIVITY_TIMEOUT_SECONDS; 0: none): an enabled stream without receiver activity that long is paused. */
  inactivityTimeoutSeconds?: number;
  /** SSF_PAUSED_MAX_SECONDS (0: none): a stream paused longer is disabled and drops what it held. */
  pausedMaxSeconds?: number;
  /** SSF_PUSH_CONCURRENCY: push streams delivered to at once (default 16). */
  concurrency?: number;
  /** SSF_PUSH_ALLOWED_HOSTS (default: any): a stream whose host is no longer allowed is paused. */
  hostAllowed?: (host: string) => boolean;
  /** Polling fallback and how often a standby deliverer tries to take over. */
  pollIntervalMs?: number;
  batchSize?: number;
}

/** A running deliverer: see {@link createPushDeliverer}. */
export interface PushDeliverer {
  /** Whether this instance holds the deliverer lock and pushes. */
  readonly active: boolean;
  wake(): void;
  stop(): Promise<void>;
}

/** What one push came to. */
export type PushOutcome =
  | { kind: 'delivered' }
  | { kind: 'transient' | 'permanent'; summary: string; retryAfterMs?: number };

/**
 * RFC 8935 §2.2/§2.3: how the deliverer treats a receiver's answer (documented in
 * docs/event-consumers.md "Push delivery").
 *
 * - 2xx (202 per RFC 8935 §2.2): delivered.
 * - 400 `invalid_key`: transient: the receiver could not find our signing key, most likely an old
 *   copy of our JWKS after a key rotation; it refreshes, the retry gets through.
 * - 408, 425, 429, 5xx, no answer, TLS or network errors: transient, retried with backoff
 *   (`Retry-After` honoured up to the cap); after too many in a row the stream is paused.
 * - every other answer (400 `invalid_request`, `invalid_issuer`, `invalid_audience`,
 *   `authentication_failed`, `access_denied`, 401, 403, 404, 3xx, other 4xx): permanent, the
 *   receiver refuses what we send and will keep refusing it until someone changes its configuration
 *   or ours: the stream is paused at once with the answer as reason. Dropping the SET instead would
 *   silently lose a revocation; pausing keeps it (and what follows) for the resume.
 */
export function classifyPushAnswer(status: number, err: string | undefined): 'delivered' | 'transient' | 'permanent' {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 400 && err === 'invalid_key') return 'transient';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'transient';
  return 'permanent';
}

/**
 * `fn` over `items` with at most `limit` calls running at once (each next item starts when a call
 * ends), results in the items' order. The deliverer's round: SSF_PUSH_CONCURRENCY streams at a
 * time, so a thousand due streams are not a thousand sockets at once.
 */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Printable, short: receiver-supplied text that goes to a stream's status reason and the logs. */
function clean(text: string, max = 200): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, max);
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The SSF push deliverer (RFC 8935, issue 17). One instance across all Custos processes pushes: the
 * one whose own PostgreSQL connection holds {@link SSF_PUSH_LOCK_KEY} (the relay's pattern and
 * repository, its own key); it LISTENs on the outbox channel, so a committed IAM change, a
 * verification request or a resumed stream wakes it at once (polling is only the fallback).
 *
 * Each round, for every enabled push stream that is due: take the outbox rows after the stream's
 * position into pending SETs (the poll path's `materialize`, so filters, subjects and per-subject
 * commit order are the same), then POST them one by one in order (`application/secevent+jwt`,
 * the stream's Authorization header); a SET leaves the queue only on 2xx, so a stream is delivered
 * strictly in order and at least once. A failure stops that stream's round (later SETs wait behind
 * it): transient ones back off exponentially with jitter, capped; permanent ones and too many
 * transient ones in a row pause the stream with a reason its status shows (SSF 1.0 §8.1.2) and
 * tell the receiver with a stream-updated SET (§8.1.5, best effort: the push channel is what
 * failed). A paused stream keeps its events (the outbox prune respects its position) up to
 * `pausedMaxEvents`; over that it is disabled and drops them. Streams are independent: one
 * failing receiver delays no other.
 */
export function createPushDeliverer(options: PushDelivererOptions): PushDeliverer {
  const log = options.logger.child({ component: 'ssf-push' });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retryInitialMs = options.retryInitialMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 300_000;
  const maxFailures = options.maxFailures ?? 20;
  const pausedMaxEvents = options.pausedMaxEvents ?? 10_000;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const batchSize = options.batchSize ?? 100;
  const inactivityTimeoutSeconds = options.inactivityTimeoutSeconds ?? 0;
  const pausedMaxSeconds = options.pausedMaxSeconds ?? 0;
  const concurrency = options.concurrency ?? 16;
  const { db, service, metrics } = options;
  const agent = new Agent({
    connect: { ...(options.ca ? { ca: [...rootCertificates, options.ca] } : {}), minVersion: 'TLSv1.2', timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  let running = true;
  // Aborted at stop: a push in flight ends at once instead of holding the shutdown for its timeout.
  const stopping = new AbortController();
  let lastHousekeeping = 0;
  const streamsWithMetrics = new Set<string>();

  const waits = createWakeableSleep();
  const { wake, sleep } = waits;

  const lock = createOutboxLock({
    databaseUrl: options.databaseUrl,
    key: SSF_PUSH_LOCK_KEY,
    applicationName: 'custos-ssf-push',
    onNotification: wake,
    onLost: () => {
      if (running) log.warn('ssf push lock connection lost; standing by');
    },
    onUnreachable: (error) => log.warn({ err: error }, 'ssf push deliverer could not reach the database'),
  });

  async function takeLock(): Promise<boolean> {
    if (!(await lock.acquire())) return false;
    log.info('ssf push deliverer active');
    return true;
  }

  /** One POST of one SET (RFC 8935 §2); never throws. */
  async function push(target: PushTarget, set: string): Promise<PushOutcome> {
    if (options.hostAllowed && !options.hostAllowed(new URL(target.endpointUrl).hostname)) {
      return { kind: 'permanent', summary: 'endpoint host not in SSF_PUSH_ALLOWED_HOSTS' };
    }
    const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json' };
    if (target.authorizationHeader) headers['authorization'] = target.authorizationHeader;
    try {
      const response = await request(target.endpointUrl, { method: 'POST', headers, body: set, dispatcher: agent, signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), stopping.signal]) });
      const text = await readLimited(response.body, 4096);
      let err: string | undefined;
      let description: string | undefined;
      try {
        const parsed = JSON.parse(text) as { err?: unknown; description?: unknown };
        if (typeof parsed.err === 'string') err = parsed.err;
        if (typeof parsed.description === 'string') description = parsed.description;
      } catch {
        // not RFC 8935 §2.3 JSON: the status decides
      }
      const kind = classifyPushAnswer(response.statusCode, err);
      if (kind === 'delivered') return { kind };
      const retryAfter = Number(response.headers['retry-after']);
      return {
        kind,
        summary: clean(`HTTP ${response.statusCode}${err ? ` ${err}` : ''}${description ? `: ${description}` : ''}`),
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
      };
    } catch (error) {
      const e = error as { code?: string; name?: string; message?: string };
      return { kind: 'transient', summary: clean(`${e.code ?? e.name ?? 'error'}: ${e.message ?? String(error)}`) };
    }
  }

  /** Pauses or disables a stream on the transmitter's side and tells its receiver (SSF 1.0 §8.1.5, best effort). */
  async function transmitterStatus(streamId: string, from: 'enabled' | 'paused', to: 'paused' | 'disabled', reason: string): Promise<void> {
    const stream = await service.transmitterSetStatus(streamId, from, to, reason);
    if (!stream) return;
    log.warn({ streamId, status: to, reason }, `ssf stream ${to} by the transmitter`);
    const target = await findPushTarget(db, streamId);
    if (!target) return;
    const { set } = await service.streamUpdatedSet(stream, to, reason);
    const outcome = await push(target, set);
    log.info({ streamId, outcome: outcome.kind }, 'ssf stream-updated event pushed');
  }

  async function fail(target: PushTarget, outcome: Exclude<PushOutcome, { kind: 'delivered' }>): Promise<void> {
    const attempt = target.pushFailures + 1;
    const backoff = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(attempt - 1, 20));
    // Jitter (half to full backoff) keeps many streams of one receiver from retrying in lockstep.
    const retryInMs = Math.min(retryMaxMs, Math.max(Math.round(backoff / 2 + (Math.random() * backoff) / 2), outcome.retryAfterMs ?? 0));
    const failures = await recordPushFailure(db, target.streamId, outcome.summary, retryInMs);
    metrics?.failures.inc({ stream_id: target.streamId, kind: outcome.kind });
    log.warn({ streamId: target.streamId, failures, kind: outcome.kind, error: outcome.summary, retryInMs }, 'ssf push failed');
    if (outcome.kind === 'permanent') {
      await transmitterStatus(target.streamId, 'enabled', 'paused', `push rejected by the receiver (${outcome.summary}); fix, then enable the stream`);
    } else if (failures >= maxFailures) {
      await transmitterStatus(target.streamId, 'enabled', 'paused', `push failing ${failures} times in a row (last: ${outcome.summary}); enable the stream to retry`);
    }
  }

  /** Delivers one stream's next batch in order; whether more may wait. */
  async function deliverStream(target: PushTarget): Promise<boolean> {
    const stream = await service.prepare(target.streamId);
    if (!stream || stream.status !== 'enabled' || stream.deliveryMethod !== PUSH_DELIVERY) return false;
    const { sets, more } = await listPendingSets(db, target.streamId, batchSize);
    for (const entry of sets) {
      if (!running) return false;
      const outcome = await push(target, entry.set);
      if (outcome.kind !== 'delivered') {
        // A push cut short by shutdown is no failure of the receiver's: it is tried again at the next start.
        if (running) await fail(target, outcome);
        return false;
      }
      await deletePendingSets(db, target.streamId, [entry.jti]);
      metrics?.delivered.inc({ stream_id: target.streamId });
      if (entry.occurredAt) metrics?.deliveryLatency.observe(Math.max(0, Date.now() - entry.occurredAt.getTime()) / 1000);
      if (target.pushFailures > 0) {
        await clearPushFailures(db, target.streamId);
        log.info({ streamId: target.streamId, after: target.pushFailures }, 'ssf push recovered');
        target.pushFailures = 0;
      }
    }
    return more || sets.length === batchSize;
  }

  async function round(): Promise<boolean> {
    const due = await duePushStreams(db, PUSH_DELIVERY);
    const results = await mapWithConcurrency(due, concurrency, (target) =>
      deliverStream(target).catch((error) => {
        log.warn({ err: error, streamId: target.streamId }, 'ssf push round failed');
        return false;
      }),
    );
    return results.some(Boolean);
  }

  /**
   * Per-stream gauges, and the bounds: an enabled stream without receiver activity for
   * `inactivity_timeout` is paused (SSF 1.0 §8.1.1: the transmitter MAY pause, disable or delete
   * it; pausing keeps its events for when the receiver is back); a stream paused longer than
   * `pausedMaxSeconds`, or holding more than `pausedMaxEvents`, is disabled and drops them, so a
   * stream nobody resumes does not hold the outbox prune forever.
   */
  async function housekeeping(): Promise<void> {
    if (Date.now() - lastHousekeeping < Math.min(pollIntervalMs, 5000)) return;
    lastHousekeeping = Date.now();
    if (inactivityTimeoutSeconds > 0) {
      for (const streamId of await streamsOlderThan(db, 'enabled', 'last_activity_at', inactivityTimeoutSeconds)) {
        await transmitterStatus(streamId, 'enabled', 'paused', `inactivity_timeout: no receiver activity for ${inactivityTimeoutSeconds} s; enable the stream to resume (its events were kept)`);
      }
    }
    if (pausedMaxSeconds > 0) {
      for (const streamId of await streamsOlderThan(db, 'paused', 'status_changed_at', pausedMaxSeconds)) {
        await transmitterStatus(streamId, 'paused', 'disabled', `paused for more than ${pausedMaxSeconds} s; disabled, its events were dropped`);
      }
    }
    const backlogs = await streamBacklogs(db);
    const seen = new Set<string>();
    for (const backlog of backlogs) {
      const held = backlog.pending + backlog.untaken;
      seen.add(backlog.streamId);
      metrics?.backlog.set({ stream_id: backlog.streamId }, held);
      metrics?.lag.set({ stream_id: backlog.streamId }, backlog.oldestAgeSeconds);
      if (backlog.status === 'paused' && held > pausedMaxEvents) {
        await transmitterStatus(backlog.streamId, 'paused', 'disabled', `held more than ${pausedMaxEvents} events while paused; disabled, its events were dropped`);
      }
    }
    for (const id of streamsWithMetrics) {
      if (!seen.has(id)) {
        metrics?.backlog.remove({ stream_id: id });
        metrics?.lag.remove({ stream_id: id });
      }
    }
    streamsWithMetrics.clear();
    for (const id of seen) streamsWithMetrics.add(id);
  }

  const loop = (async () => {
    while (running) {
      if (!lock.held && !(await takeLock())) {
        await sleep(pollIntervalMs);
        waits.clear();
        continue;
      }
      waits.clear();
      let more = false;
      try {
        more = await round();
      } catch (error) {
        log.warn({ err: error }, 'ssf push round failed');
      }
      await housekeeping().catch((error) => log.debug({ err: error }, 'ssf housekeeping failed'));
      if (more) continue;
      const due = await nextPushDueInMs(db, PUSH_DELIVERY).catch(() => undefined);
      await sleep(Math.min(pollIntervalMs, due ?? pollIntervalMs));
    }
  })();

  return {
    get active() {
      return lock.held;
    },
    wake,
    async stop() {
      running = false;
      stopping.abort();
      waits.stop();
      await loop;
      await lock.release();
      await agent.close().catch(() => {});
    },
  };
}

/**
 * The deliverer's settings from the environment; SSF_PUSH_CA_FILE must hold at least one PEM
 * certificate, else start-up stops with one line naming it.
 */
export function pushDelivererSettings(config: AppConfig, cwd: string): Omit<PushDelivererOptions, 'db' | 'databaseUrl' | 'service' | 'logger' | 'metrics'> {
  const { env } = config;
  let ca: string | undefined;
  if (env.SSF_PUSH_CA_FILE) {
    const file = path.resolve(cwd, env.SSF_PUSH_CA_FILE);
    try {
      ca = readFileSync(file, 'utf8');
      const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(ca);
      if (!first) throw new Error('no PEM certificate');
      new X509Certificate(first[0]);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'must be a readable file of PEM CA certificates';
      throw new ConfigError([`SSF_PUSH_CA_FILE: ${reason} (${file})`]);
    }
  }
  return {
    ca,
    timeoutMs: env.SSF_PUSH_TIMEOUT_MS,
    retryMaxMs: env.SSF_PUSH_RETRY_MAX_MS,
    maxFailures: env.SSF_PUSH_MAX_FAILURES,
    pausedMaxEvents: env.SSF_PAUSED_MAX_EVENTS,
    inactivityTimeoutSeconds: env.SSF_INACTIVITY_TIMEOUT_SECONDS,
    pausedMaxSeconds: env.SSF_PAUSED_MAX_SECONDS,
    concurrency: env.SSF_PUSH_CONCURRENCY,
    hostAllowed: createPushHostAllowList(env.SSF_PUSH_ALLOWED_HOSTS),
    pollIntervalMs: env.EVENTS_POLL_INTERVAL_MS,
  };
}
