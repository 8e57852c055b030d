import { randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { IAM_EVENT_TYPES, type IamEventType } from '../events/iam-event.js';
import { buildSecurityEventClaims, SET_EVENT_TYPES, type SecurityEventClaims, type SetSigner } from '../events/security-event-token.js';
import { AppError } from '../http/app-error.js';
import { writeAudit } from '../iam/audit.repository.js';
import {
  advancePosition,
  changeStatusIf,
  claimVerification,
  findStreamById,
  notifyDeliverer,
  deletePendingSets,
  deleteStream,
  deleteSubject,
  findStream,
  findUserIdByEmail,
  insertPendingSet,
  insertStream,
  listPendingSets,
  listStreams,
  subjectUsers,
  takeOutboxRows,
  touchActivity,
  updateStream,
  updateStreamStatus,
  upsertSubject,
  type StoredStream,
  type StreamOutboxRow,
} from './ssf-stream.repository.js';

/** RFC 8936 poll delivery. */
export const POLL_DELIVERY = 'urn:ietf:rfc:8936';
/** RFC 8935 push delivery (the deliverer is src/ssf/push-deliverer.ts). */
export const PUSH_DELIVERY = 'urn:ietf:rfc:8935';
/** SSF 1.0 §8.1.4.1 verification event. */
export const SSF_VERIFICATION_EVENT = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
/** SSF 1.0 §8.1.5 stream updated event: the transmitter changed the stream's status. */
export const SSF_STREAM_UPDATED_EVENT = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
/** SSF 1.0 §8.1.1 `events_supported`: the CAEP/Custos events Custos emits, verification and stream updated. */
export const SSF_EVENTS_SUPPORTED: readonly string[] = [
  ...IAM_EVENT_TYPES.map((type) => SET_EVENT_TYPES[type]),
  SSF_VERIFICATION_EVENT,
  SSF_STREAM_UPDATED_EVENT,
];
/**
 * CAEP Interoperability Profile 1.0 §"Session Revocation" / §"Credential Change": `reason_admin`
 * MUST be non-empty. Custos records one when the operator gave it; otherwise this says what happened.
 */
const DEFAULT_REASON_ADMIN: Partial<Record<IamEventType, string>> = {
  'session-revoked': 'Session revoked',
  'credential-changed': 'Credential changed',
};
const TYPE_OF_URI = new Map<string, IamEventType>(IAM_EVENT_TYPES.map((type) => [SET_EVENT_TYPES[type], type]));

/** A stream's subject (SSF 1.0 §3, RFC 9493 §3): simple, or complex with a `user`. */
export type StreamSubject = Record<string, unknown> & { format?: string };

/** Who makes a change, for the audit log. */
export interface SsfCaller {
  clientId: string;
  clientAddress?: string | null;
  requestId?: string | null;
}

/** What a receiver may set on a stream (SSF 1.0 §8.1.1, receiver-supplied; `default_subjects` is a Custos extension). */
export interface StreamInput {
  eventsRequested?: string[];
  description?: string | null;
  defaultSubjects?: 'ALL' | 'NONE';
  deliveryMethod?: string;
  /** Push: the receiver's endpoint (https) and the Authorization header value to send (RFC 8935 §2). */
  endpointUrl?: string;
  authorizationHeader?: string;
}

/** RFC 8936 §2.1 poll request, parsed. */
export interface PollRequest {
  maxEvents?: number;
  returnImmediately?: boolean;
  ack?: string[];
  setErrs?: Record<string, { err: string; description?: string }>;
}

export interface SsfServiceDeps {
  db: Kysely<Database>;
  issuer: string;
  sign: SetSigner;
  logger: Logger;
  /** Longest a poll without `returnImmediately` waits for events (RFC 8936 §2.4 long polling). */
  longPollMs?: number;
  /** How often a long poll looks for new events. */
  pollCheckMs?: number;
  /** SSF 1.0 §8.1.1 `min_verification_interval` (seconds; 0: none): verification more often gets 429. */
  minVerificationIntervalSeconds?: number;
  /** SSF_PUSH_ALLOWED_HOSTS: whether push may go to a host (default: any). */
  pushHostAllowed?: (host: string) => boolean;
  /** SSF 1.0 §8.1.1 `inactivity_timeout` in seconds, advertised in every stream (0: none; enforced by the push deliverer's housekeeping). */
  inactivityTimeoutSeconds?: number;
}

/** SSF 1.0 §8.1.4.2: 429, verification asked for again within `min_verification_interval`. */
export class VerificationTooSoon extends AppError {
  constructor(
    intervalSeconds: number,
    readonly retryAfterSeconds: number,
  ) {
    super('too_many_requests', `verification was requested less than ${intervalSeconds} s ago (min_verification_interval)`, { status: 429 });
  }
}

const notFound = () => new AppError('not_found', 'no such stream', { status: 404 });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BATCH = 200;
/** Most outbox rows one materialization takes (the rest at the next poll). */
const MAX_TAKE = 5000;

/** `rows` ((txid, id) order) with each subject's rows in `subject_version` order, in the places that subject's rows had. */
export function inSubjectOrder<T extends { subject: string; subjectVersion: number }>(rows: readonly T[]): T[] {
  const bySubject = new Map<string, T[]>();
  for (const row of rows) {
    const list = bySubject.get(row.subject);
    if (list) list.push(row);
    else bySubject.set(row.subject, [row]);
  }
  for (const list of bySubject.values()) list.sort((a, b) => a.subjectVersion - b.subjectVersion);
  const next = new Map<string, number>();
  return rows.map((row) => {
    const index = next.get(row.subject) ?? 0;
    next.set(row.subject, index + 1);
    return bySubject.get(row.subject)![index]!;
  });
}

/**
 * The SSF 1.0 transmitter: streams of receivers (SSF 1.0 §8.1) fed from the same transactional
 * outbox the Pulsar relay reads, delivered by RFC 8936 polling.
 *
 * Each stream keeps a position in the outbox. When the stream is polled (or its status changes),
 * the outbox rows after its position are turned into SETs signed for the stream's `aud` and kept
 * in `ssf_pending_set` until acknowledged, and the position moves past them ("materialized"):
 * an enabled stream keeps the rows matching its subjects and `events_delivered`, a disabled one
 * drops them (SSF 1.0 §8.1.2: a disabled stream does not keep events), a paused one does not move
 * (nothing is lost while paused; everything comes once enabled again). The relay's prune never
 * deletes a row after the position of a stream that is not disabled (see `prunePublished`).
 */
export function createSsfService(deps: SsfServiceDeps) {
  const { db } = deps;
  const log = deps.logger.child({ component: 'ssf' });
  const longPollMs = deps.longPollMs ?? 10_000;
  // Aborted at shutdown: waiting polls answer at once instead of holding the listener's drain.
  const stopping = new AbortController();
  const pollCheckMs = deps.pollCheckMs ?? 250;
  const minVerificationInterval = deps.minVerificationIntervalSeconds ?? 0;
  const pushHostAllowed = deps.pushHostAllowed ?? (() => true);
  const inactivityTimeout = deps.inactivityTimeoutSeconds ?? 0;

  function configuration(stream: StoredStream): Record<string, unknown> {
    const delivered = stream.eventsRequested.filter((uri) => SSF_EVENTS_SUPPORTED.includes(uri));
    return {
      stream_id: stream.streamId,
      iss: deps.issuer,
      aud: stream.aud,
      events_supported: SSF_EVENTS_SUPPORTED,
      events_requested: stream.eventsRequested,
      events_delivered: delivered,
      // The Authorization header a push receiver set is write-only: never read back.
      delivery:
        stream.deliveryMethod === PUSH_DELIVERY
          ? { method: PUSH_DELIVERY, endpoint_url: stream.endpointUrl }
          : { method: stream.deliveryMethod, endpoint_url: `${deps.issuer}/ssf/poll/${stream.streamId}` },
      ...(stream.description !== null ? { description: stream.description } : {}),
      default_subjects: stream.defaultSubjects,
      ...(minVerificationInterval > 0 ? { min_verification_interval: minVerificationInterval } : {}),
      ...(inactivityTimeout > 0 ? { inactivity_timeout: inactivityTimeout } : {}),
    };
  }

  async function owned(clientId: string, streamId: string, options: { lock?: boolean; trx?: typeof db } = {}): Promise<StoredStream> {
    if (!UUID.test(streamId)) throw notFound();
    const stream = await findStream(options.trx ?? db, clientId, streamId, { lock: options.lock });
    if (!stream) throw notFound();
    // Every receiver call naming its stream (management and poll) restarts `inactivity_timeout` (SSF 1.0 §8.1.1).
    await touchActivity(options.trx ?? db, clientId, streamId);
    return stream;
  }

  /** The delivery a request asks for (undefined: none given), checked: push needs an https `endpoint_url`. */
  function checkDelivery(input: StreamInput): { method: string; endpointUrl: string | null; authorizationHeader: string | null } | undefined {
    const method = input.deliveryMethod;
    if (method === undefined) return undefined;
    if (method === POLL_DELIVERY) return { method, endpointUrl: null, authorizationHeader: null };
    if (method !== PUSH_DELIVERY) {
      throw new AppError('invalid_request', `delivery method ${method} is not supported (${PUSH_DELIVERY} or ${POLL_DELIVERY})`, { status: 400 });
    }
    let url: URL;
    try {
      url = new URL(input.endpointUrl ?? '');
    } catch {
      throw new AppError('invalid_request', 'delivery.endpoint_url: an https URL is required for push delivery', { status: 400 });
    }
    if (url.protocol !== 'https:' || url.username || url.password || url.hash) {
      throw new AppError('invalid_request', 'delivery.endpoint_url: an https URL without credentials or fragment is required', { status: 400 });
    }
    if (!pushHostAllowed(url.hostname)) {
      throw new AppError('invalid_request', 'delivery.endpoint_url: this transmitter does not push to that host', { status: 400 });
    }
    return { method, endpointUrl: url.href, authorizationHeader: input.authorizationHeader ?? null };
  }

  async function audit(trx: typeof db, caller: SsfCaller, action: string, streamId: string, details: Record<string, unknown> = {}): Promise<void> {
    await writeAudit(trx, {
      actor: `client:${caller.clientId}`,
      action,
      target: streamId,
      outcome: 'success',
      clientAddress: caller.clientAddress ?? null,
      requestId: caller.requestId ?? null,
      details,
    });
  }

  /**
   * Turns the outbox rows after the stream's position into pending SETs (see above); in the
   * caller's transaction, stream locked. Takes every safe row (up to {@link MAX_TAKE}) at once:
   * two transactions writing for one user commit one after the other (the per-subject lock of
   * `recordEvent`), so once the later is safe the earlier is too, and both are here; their rows
   * are then put back in `subject_version` (commit) order, each subject's events keeping the
   * places its rows had in (txid, id) order, so a receiver gets one user's events in commit order
   * (only a backlog over MAX_TAKE could cut between two of them).
   */
  async function materialize(trx: typeof db, stream: StoredStream): Promise<void> {
    if (stream.status === 'paused') return;
    const rows: StreamOutboxRow[] = [];
    for (;;) {
      const batch = await takeOutboxRows(trx, stream.streamId, BATCH);
      rows.push(...batch);
      if (batch.length < BATCH || rows.length >= MAX_TAKE) break;
      const last = batch[batch.length - 1]!;
      await advancePosition(trx, stream.streamId, last.txid, last.id);
    }
    if (rows.length === 0) return;
    if (stream.status === 'enabled') {
      const wanted = new Set(stream.eventsRequested.map((uri) => TYPE_OF_URI.get(uri)).filter((type) => type !== undefined));
      const users = stream.defaultSubjects === 'NONE' ? await subjectUsers(trx, stream.streamId) : undefined;
      for (const row of inSubjectOrder(rows)) {
        if (!wanted.has(row.payload.type)) continue;
        if (users && !users.has(row.subject)) continue;
        const claims = buildSecurityEventClaims(
          { eventId: row.eventId, txid: row.txid, occurredAt: row.occurredAt, event: row.payload },
          { issuer: deps.issuer, audience: stream.aud },
        );
        const fallbackReason = DEFAULT_REASON_ADMIN[row.payload.type];
        for (const body of Object.values(claims.events)) {
          if (fallbackReason && !body['reason_admin']) body['reason_admin'] = { en: fallbackReason };
        }
        await insertPendingSet(trx, stream.streamId, row.eventId, await deps.sign(claims), row.occurredAt);
      }
    }
    const last = rows[rows.length - 1]!;
    await advancePosition(trx, stream.streamId, last.txid, last.id);
  }

  /** An SSF event about the stream itself (verification, stream updated): subject = the stream (opaque, SSF 1.0 §8.1.4.1). */
  function ssfEventClaims(stream: StoredStream, jti: string, type: string, body: Record<string, unknown>): SecurityEventClaims {
    return {
      iss: deps.issuer,
      iat: Math.floor(Date.now() / 1000),
      jti,
      aud: stream.aud,
      sub_id: { format: 'opaque', id: stream.streamId },
      events: { [type]: body },
    } as unknown as SecurityEventClaims;
  }

  async function resolveUser(subject: StreamSubject): Promise<string | null> {
    switch (subject.format) {
      case 'iss_sub':
        return subject['iss'] === deps.issuer ? String(subject['sub']) : null;
      case 'opaque':
        return String(subject['id']);
      case 'email':
        return (await findUserIdByEmail(db, String(subject['email']))) ?? null;
      default: {
        const user = subject['user'];
        return typeof user === 'object' && user !== null ? resolveUser(user as StreamSubject) : null;
      }
    }
  }

  return {
    configuration,

    /** Ends the waits of long polls (shutdown): they answer with what they have. */
    stop(): void {
      stopping.abort();
    },

    /** SSF 1.0 §8.1.1.1: creates a stream of the caller. */
    async create(caller: SsfCaller, input: StreamInput): Promise<Record<string, unknown>> {
      const delivery = checkDelivery(input) ?? { method: POLL_DELIVERY, endpointUrl: null, authorizationHeader: null };
      return db.transaction().execute(async (trx) => {
        const stream = await insertStream(trx, {
          streamId: randomUUID(),
          clientId: caller.clientId,
          aud: caller.clientId,
          eventsRequested: input.eventsRequested ?? [],
          deliveryMethod: delivery.method,
          endpointUrl: delivery.endpointUrl,
          authorizationHeader: delivery.authorizationHeader,
          description: input.description ?? null,
          defaultSubjects: input.defaultSubjects ?? 'ALL',
        });
        await audit(trx, caller, 'ssf.stream.create', stream.streamId, { events_requested: stream.eventsRequested, delivery_method: delivery.method });
        return configuration(stream);
      });
    },

    /** SSF 1.0 §8.1.1.2: one stream of the caller, or all of them. */
    async read(clientId: string, streamId?: string): Promise<Record<string, unknown> | Record<string, unknown>[]> {
      if (streamId !== undefined) return configuration(await owned(clientId, streamId));
      return (await listStreams(db, clientId)).map(configuration);
    },

    /** SSF 1.0 §8.1.1.3 (update, only the given properties) and §8.1.1.4 (replace, all of them). */
    async change(caller: SsfCaller, streamId: string, input: StreamInput, mode: 'update' | 'replace'): Promise<Record<string, unknown>> {
      return db.transaction().execute(async (trx) => {
        const before = await owned(caller.clientId, streamId, { lock: true, trx });
        const delivery = checkDelivery(input);
        // Events up to now are filtered with the properties they were committed under.
        await materialize(trx, before);
        const changes =
          mode === 'replace'
            ? { eventsRequested: input.eventsRequested ?? [], description: input.description ?? null, defaultSubjects: input.defaultSubjects ?? 'ALL' }
            : input;
        await updateStream(trx, streamId, {
          eventsRequested: changes.eventsRequested,
          description: changes.description,
          defaultSubjects: changes.defaultSubjects,
          delivery,
        });
        if (delivery) await notifyDeliverer(trx);
        await audit(trx, caller, `ssf.stream.${mode}`, streamId, delivery ? { delivery_method: delivery.method } : {});
        return configuration((await findStream(trx, caller.clientId, streamId))!);
      });
    },

    /** SSF 1.0 §8.1.1.5. */
    async remove(caller: SsfCaller, streamId: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await owned(caller.clientId, streamId, { lock: true, trx });
        await deleteStream(trx, streamId);
        await audit(trx, caller, 'ssf.stream.delete', streamId);
      });
    },

    /** SSF 1.0 §8.1.2.1. */
    async status(clientId: string, streamId: string): Promise<Record<string, unknown>> {
      const stream = await owned(clientId, streamId);
      return { stream_id: stream.streamId, status: stream.status, ...(stream.statusReason ? { reason: stream.statusReason } : {}) };
    },

    /** SSF 1.0 §8.1.2.2: events up to the change are taken (or dropped) under the old status. */
    async setStatus(caller: SsfCaller, streamId: string, status: StoredStream['status'], reason?: string): Promise<Record<string, unknown>> {
      return db.transaction().execute(async (trx) => {
        const stream = await owned(caller.clientId, streamId, { lock: true, trx });
        await materialize(trx, stream);
        await updateStreamStatus(trx, streamId, status, reason ?? null);
        if (status === 'enabled') await notifyDeliverer(trx);
        await audit(trx, caller, 'ssf.stream.status', streamId, { from: stream.status, to: status });
        return { stream_id: streamId, status, ...(reason ? { reason } : {}) };
      });
    },

    /** SSF 1.0 §8.1.3.2 (add) and §8.1.3.3 (remove). */
    async subject(caller: SsfCaller, streamId: string, subject: StreamSubject, action: 'add' | 'remove'): Promise<void> {
      const key = canonicalize(subject) ?? '';
      const userId = action === 'add' ? await resolveUser(subject) : null;
      await db.transaction().execute(async (trx) => {
        const stream = await owned(caller.clientId, streamId, { lock: true, trx });
        // What committed before the change is filtered by the subjects of before.
        await materialize(trx, stream);
        if (action === 'add') await upsertSubject(trx, streamId, key, subject, userId);
        else if (!(await deleteSubject(trx, streamId, key))) throw new AppError('not_found', 'the subject is not in the stream', { status: 404 });
        await audit(trx, caller, `ssf.subject.${action}`, streamId, { format: subject.format ?? 'complex' });
      });
    },

    /**
     * SSF 1.0 §8.1.4.2: queues a verification event for the stream (pushed, or returned by the next
     * poll). More often than `min_verification_interval` gets 429 with `Retry-After`, decided by
     * one conditional UPDATE (parallel requests cannot both pass).
     */
    async verify(caller: SsfCaller, streamId: string, state?: string): Promise<void> {
      const stream = await owned(caller.clientId, streamId);
      if (stream.status === 'disabled') throw new AppError('stream_disabled', 'the stream is disabled', { status: 409 });
      const claim = await claimVerification(db, caller.clientId, streamId, minVerificationInterval);
      if ('missing' in claim) throw notFound();
      if (!claim.claimed) {
        throw new VerificationTooSoon(minVerificationInterval, claim.retryAfterSeconds);
      }
      const jti = randomUUID();
      const set = await deps.sign(ssfEventClaims(stream, jti, SSF_VERIFICATION_EVENT, state !== undefined ? { state } : {}));
      await db.transaction().execute(async (trx) => {
        await insertPendingSet(trx, streamId, jti, set);
        await notifyDeliverer(trx);
      });
    },

    /**
     * SSF 1.0 §8.1.5: a signed stream-updated SET telling the stream's receiver the transmitter set
     * its status to `status` (for all its subjects), with `reason`.
     */
    async streamUpdatedSet(stream: StoredStream, status: StoredStream['status'], reason: string): Promise<{ jti: string; set: string }> {
      const jti = randomUUID();
      return { jti, set: await deps.sign(ssfEventClaims(stream, jti, SSF_STREAM_UPDATED_EVENT, { status, reason })) };
    },

    /**
     * The transmitter changes a stream's status on its own (push failing, paused backlog over its
     * bound): only while the status is still `from`, audited as `system:ssf` in the same
     * transaction. Returns the changed stream, or undefined when the status had moved on.
     */
    async transmitterSetStatus(streamId: string, from: StoredStream['status'], to: StoredStream['status'], reason: string): Promise<StoredStream | undefined> {
      return db.transaction().execute(async (trx) => {
        if (!(await changeStatusIf(trx, streamId, from, to, reason))) return undefined;
        await writeAudit(trx, {
          actor: 'system:ssf',
          action: 'ssf.stream.status',
          target: streamId,
          outcome: 'success',
          clientAddress: null,
          requestId: null,
          details: { from, to, reason },
        });
        return findStreamById(trx, streamId);
      });
    },

    /**
     * The push deliverer's step before sending: takes the outbox rows after the stream's position
     * into pending SETs (stream locked; skipped when a management request holds the lock, it
     * materializes itself). Returns the stream, or undefined when gone or locked.
     */
    async prepare(streamId: string): Promise<StoredStream | undefined> {
      return db.transaction().execute(async (trx) => {
        const stream = await findStreamById(trx, streamId, { lock: true, skipLocked: true });
        if (stream) await materialize(trx, stream);
        return stream;
      });
    },

    /**
     * RFC 8936 §2.4: acknowledges `ack` and `setErrs`, then returns up to `maxEvents` pending SETs
     * (unacknowledged ones come again). Without `returnImmediately`, waits up to the long-poll
     * bound for an event. A paused stream delivers nothing (its events wait).
     */
    async poll(clientId: string, streamId: string, request: PollRequest, signal?: AbortSignal): Promise<{ sets: Record<string, string>; moreAvailable: boolean }> {
      const stream = await owned(clientId, streamId);
      if (stream.deliveryMethod !== POLL_DELIVERY) throw new AppError('invalid_request', 'the stream uses push delivery', { status: 400 });
      const errs = Object.entries(request.setErrs ?? {});
      if (errs.length > 0) log.info({ streamId, setErrs: errs.map(([jti, e]) => ({ jti, err: e.err })) }, 'receiver reported SET errors');
      await deletePendingSets(db, streamId, [...(request.ack ?? []), ...errs.map(([jti]) => jti)]);
      const maxEvents = request.maxEvents ?? 100;
      const deadline = Date.now() + (request.returnImmediately ? 0 : longPollMs);
      for (;;) {
        const current = await db.transaction().execute(async (trx) => {
          const locked = await owned(clientId, streamId, { lock: true, trx });
          await materialize(trx, locked);
          return locked;
        });
        if (current.status !== 'enabled' || maxEvents === 0) return { sets: {}, moreAvailable: false };
        const pending = await listPendingSets(db, streamId, maxEvents);
        if (pending.sets.length > 0 || Date.now() >= deadline || signal?.aborted || stopping.signal.aborted) {
          return { sets: Object.fromEntries(pending.sets.map((entry) => [entry.jti, entry.set])), moreAvailable: pending.more };
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pollCheckMs, Math.max(0, deadline - Date.now()))));
      }
    },
  };
}

/** The SSF transmitter service: see {@link createSsfService}. */
export type SsfService = ReturnType<typeof createSsfService>;
