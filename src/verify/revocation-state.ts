import { VerifyError } from './errors.js';
import type { SecurityEvent } from './security-event.js';

/** What a consumer knows about one subject from the events it applied. */
export interface SubjectState {
  /** Tokens issued at or before this time (seconds) are refused: sessions revoked / credential revoked. */
  revokedAt?: number;
  /** Tokens issued at or before this time carry stale roles. */
  rolesChangedAt?: number;
  roles?: string[];
  disabled: boolean;
  /** `event_timestamp` of the newest event applied for this subject. */
  lastEventTimestamp: number;
}

/** What a consumer knows about one client from the client events it applied. */
export interface ClientState {
  /** Tokens the client obtained at or before this time (seconds) are refused: it was disabled or deleted then. */
  revokedAt?: number;
  disabled: boolean;
  /** `event_timestamp` of the newest client event applied for this client. */
  lastEventTimestamp: number;
}

/** Outcome of {@link RevocationState.apply}. */
export type ApplyResult = 'applied' | 'duplicate' | 'stale';

/** Options of {@link createRevocationState}. */
export interface RevocationStateOptions {
  /** How many recent event ids to remember for deduplication. Default 100 000. */
  maxRememberedEvents?: number;
  /** How many revoked sessions (`sid`s) to remember, oldest forgotten first. Default 100 000. */
  maxRevokedSessions?: number;
}

/**
 * The consumer-side state fed by verified SETs (seed 000's cache, done with events instead of a TTL).
 */
export interface RevocationState {
  /**
   * Applies a verified event: ignores one whose `jti` was seen (`duplicate`) and, for disable/enable,
   * one older than the newest already applied for its subject (`stale`): out-of-order delivery can
   * never re-enable a disabled account. Revocation times only ever move forward.
   */
  apply(event: SecurityEvent): ApplyResult;
  /** What is known about `subject`, if anything. */
  get(subject: string): Readonly<SubjectState> | undefined;
  /** What is known about the client `clientId` from client events, if anything. */
  getClient(clientId: string): Readonly<ClientState> | undefined;
  /** Whether a `session-revoked` event named this session (`sid`). */
  isSessionRevoked(sid: string): boolean;
  /**
   * Throws `subject_disabled`, `subject_revoked` or `claims_changed` (a {@link VerifyError}) when
   * a token of `subject` issued at `iat` must no longer be accepted, and `session_revoked` when it
   * carries (`sid`) a session a `session-revoked` event named, whenever it was issued (a revoked
   * session issues nothing after it). Same-second ties count as "before": a token from the second
   * of a revocation is refused. With `clientId` (the token's `client_id`), also `client_disabled`
   * while that client is disabled or deleted, and `client_revoked` for a token it obtained at or
   * before it was last disabled (enabling a client again does not bring its old tokens back).
   */
  check(subject: string | undefined, iat: number, sid?: string, clientId?: string): void;
}

/** Creates an empty {@link RevocationState}. */
export function createRevocationState(options: RevocationStateOptions = {}): RevocationState {
  const max = options.maxRememberedEvents ?? 100_000;
  const maxSessions = options.maxRevokedSessions ?? 100_000;
  const seen = new Set<string>();
  const revokedSessions = new Set<string>();
  const subjects = new Map<string, SubjectState>();
  const clients = new Map<string, ClientState>();
  /** `client-disabled` / `client-deleted` / `client-enabled`: the client's own state, in event-time order. */
  const applyClient = (event: SecurityEvent, clientId: string): ApplyResult => {
    const state = clients.get(clientId) ?? { disabled: false, lastEventTimestamp: -Infinity };
    const at = event.eventTimestamp;
    if (event.kind !== 'client-enabled') state.revokedAt = Math.max(state.revokedAt ?? -Infinity, at);
    if (at < state.lastEventTimestamp) {
      clients.set(clientId, state);
      return 'stale';
    }
    state.disabled = event.kind !== 'client-enabled';
    state.lastEventTimestamp = at;
    clients.set(clientId, state);
    return 'applied';
  };
  const remember = (id: string) => {
    seen.add(id);
    if (seen.size > max) seen.delete(seen.values().next().value as string);
  };
  return {
    apply(event) {
      if (seen.has(event.id)) return 'duplicate';
      remember(event.id);
      if (event.kind === 'client-disabled' || event.kind === 'client-enabled' || event.kind === 'client-deleted') {
        return applyClient(event, event.clientId ?? event.subject);
      }
      const at = event.eventTimestamp;
      const state = subjects.get(event.subject) ?? { disabled: false, lastEventTimestamp: -Infinity };
      const stale = at < state.lastEventTimestamp;
      const forward = (current: number | undefined) => Math.max(current ?? -Infinity, at);
      switch (event.kind) {
        case 'session-revoked':
          // One session (a `complex` subject): its tokens; otherwise every token of the user.
          if (event.sessionId !== undefined) {
            revokedSessions.add(event.sessionId);
            if (revokedSessions.size > maxSessions) revokedSessions.delete(revokedSessions.values().next().value as string);
            return stale ? 'stale' : 'applied';
          }
          state.revokedAt = forward(state.revokedAt);
          break;
        case 'credential-change': {
          const change = event.event['change_type'];
          if (change === 'revoke' || change === 'delete' || change === 'update') state.revokedAt = forward(state.revokedAt);
          break;
        }
        case 'token-claims-change': {
          if (!stale) {
            const claims = event.event['claims'];
            const roles = typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>)['roles'] : undefined;
            if (Array.isArray(roles)) state.roles = roles.filter((role): role is string => typeof role === 'string');
          }
          state.rolesChangedAt = forward(state.rolesChangedAt);
          break;
        }
        case 'account-disabled':
          if (stale) return 'stale';
          state.disabled = true;
          state.revokedAt = forward(state.revokedAt);
          break;
        case 'account-enabled':
          if (stale) return 'stale';
          state.disabled = false;
          break;
        default:
          return stale ? 'stale' : 'applied';
      }
      state.lastEventTimestamp = Math.max(state.lastEventTimestamp, at);
      subjects.set(event.subject, state);
      return stale ? 'stale' : 'applied';
    },
    get(subject) {
      return subjects.get(subject);
    },
    getClient(clientId) {
      return clients.get(clientId);
    },
    isSessionRevoked(sid) {
      return revokedSessions.has(sid);
    },
    check(subject, iat, sid, clientId) {
      if (sid !== undefined && revokedSessions.has(sid)) throw new VerifyError('session_revoked', `session ${sid} was revoked`);
      const client = clientId === undefined ? undefined : clients.get(clientId);
      if (client?.disabled) throw new VerifyError('client_disabled', `client ${clientId} is disabled`);
      if (client?.revokedAt !== undefined && iat <= client.revokedAt) {
        throw new VerifyError('client_revoked', `token issued at ${iat}, client ${clientId} disabled at ${client.revokedAt}`);
      }
      if (subject === undefined) return;
      const state = subjects.get(subject);
      if (!state) return;
      if (state.disabled) throw new VerifyError('subject_disabled', `subject ${subject} is disabled`);
      if (state.revokedAt !== undefined && iat <= state.revokedAt) {
        throw new VerifyError('subject_revoked', `token issued at ${iat}, subject revoked at ${state.revokedAt}`);
      }
      if (state.rolesChangedAt !== undefined && iat <= state.rolesChangedAt) {
        throw new VerifyError('claims_changed', `token issued at ${iat}, roles changed at ${state.rolesChangedAt}`);
      }
    },
  };
}
