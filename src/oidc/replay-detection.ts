import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { insertModelsOnce, type OnceRecord } from '../db/oidc-model.repository.js';
import { createStatementBatcher } from '../db/statement-batcher.js';
import type { DpopReplayStore } from '../verify/index.js';

/** Records an id once across every instance; true for the first caller only. */
export type RecordOnce = (record: OnceRecord) => Promise<boolean>;

/**
 * Replay detection in PostgreSQL (the `ReplayDetection` rows of `oidc_model`, purged when
 * expired): every DPoP proof and client assertion the provider sees, and the DPoP proofs of
 * Custos's own APIs. Requests arriving together share one statement.
 */
export function createReplayRecorder(db: Kysely<Database>): RecordOnce {
  return createStatementBatcher<OnceRecord, boolean>((records) => insertModelsOnce(db, 'ReplayDetection', records), { maxBatch: 64, maxInFlight: 2 });
}

/** A `custos/verify` DPoP replay store on {@link RecordOnce}: a proof used on one instance is refused on every other. */
export function dpopReplayStore(recordOnce: RecordOnce, scope: string): DpopReplayStore {
  return {
    useOnce: (key, expiresAt) =>
      recordOnce({
        id: createHash('sha256').update(`${scope}\u0000${key}`).digest('base64url'),
        payload: { kind: 'ReplayDetection', iss: scope },
        expiresIn: Math.max(1, Math.ceil(expiresAt - Date.now() / 1000)),
      }),
  };
}
