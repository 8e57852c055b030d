import type { TLSSocket } from 'node:tls';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { peerCertificateOf } from '../http/peer-certificate.js';
import { x5tS256 } from '../pki/thumbprint.js';
import { writeAudit } from './audit.repository.js';

/** A refused admin request, as the admin error middleware saw it. */
export interface AdminRefusal {
  status: number;
  /** The stable error code of the answer (never the request's token or body). */
  code: string;
  method: string;
  path: string;
  /** `client:<client_id>` once the admin token was accepted. */
  actor?: string;
  clientAddress?: string;
  requestId?: string;
  socket: TLSSocket;
}

export interface RefusalAuditOptions {
  /** Denied records per certificate and code: at most one per window, the rest counted in the next. */
  windowMs?: number;
  /** Certificates (and codes) tracked at once; beyond that, denied records are dropped (and logged). */
  maxKeys?: number;
}

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Audit records of refused admin requests: `denied` for authentication/authorization refusals
 * (401/403; actor `client:<id>` when known, else `cert:<x5t#S256>` of the TLS client certificate,
 * else `anonymous`) and `failure` for refused mutations of an authenticated caller (other 4xx).
 *
 * Unauthenticated callers cannot grow the table without bound: the admin listener's TLS already
 * requires a certificate issued by the client CA (so callers are a bounded, known set), and denied
 * records are aggregated per certificate and code: one per `windowMs`, carrying the number of
 * refusals held back since the previous one (`suppressed`). Details hold the code, method and path,
 * never a token.
 */
export function createRefusalAudit(db: Kysely<Database>, logger: Logger, options: RefusalAuditOptions = {}) {
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 10_000;
  const windows = new Map<string, { until: number; suppressed: number }>();

  /** Whether a denied record for `key` is due now, and how many were held back before it. */
  function due(key: string, now: number): { write: boolean; suppressed: number } {
    const current = windows.get(key);
    if (current && current.until > now) {
      current.suppressed += 1;
      return { write: false, suppressed: 0 };
    }
    if (!current && windows.size >= maxKeys) {
      for (const [k, w] of windows) if (w.until <= now && w.suppressed === 0) windows.delete(k);
      if (windows.size >= maxKeys) return { write: false, suppressed: 0 };
    }
    windows.set(key, { until: now + windowMs, suppressed: 0 });
    return { write: true, suppressed: current?.suppressed ?? 0 };
  }

  return async function auditRefusal(refusal: AdminRefusal): Promise<void> {
    const denied = refusal.status === 401 || refusal.status === 403;
    if (!denied && !(refusal.actor && MUTATIONS.has(refusal.method) && refusal.status >= 400 && refusal.status < 500)) return;
    const certificate = peerCertificateOf(refusal.socket);
    const actor = refusal.actor ?? (certificate ? `cert:${x5tS256(certificate)}` : 'anonymous');
    const details: Record<string, unknown> = { code: refusal.code, status: refusal.status, method: refusal.method, path: refusal.path.slice(0, 256) };
    if (denied && !refusal.actor) {
      const { write, suppressed } = due(`${actor} ${refusal.code}`, Date.now());
      if (!write) return;
      if (suppressed > 0) details.suppressed = suppressed;
    }
    try {
      await writeAudit(db, {
        actor,
        action: denied ? 'admin.denied' : 'admin.refused',
        outcome: denied ? 'denied' : 'failure',
        clientAddress: refusal.clientAddress ?? null,
        requestId: refusal.requestId ?? null,
        details,
      });
    } catch (error) {
      logger.error({ err: error, code: refusal.code }, 'audit write of a refused admin request failed');
    }
  };
}

export type RefusalAudit = ReturnType<typeof createRefusalAudit>;
