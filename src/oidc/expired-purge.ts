import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { purgeExpiredModels } from '../db/oidc-model.repository.js';

/** Deletes expired oidc-provider rows every `intervalMs` (unref'd); returns the stop function. */
export function startExpiredPurge(db: Kysely<Database>, intervalMs: number, logger: Logger): () => Promise<void> {
  const purge = setInterval(() => {
    purgeExpiredModels(db)
      .then((removed) => removed > 0 && logger.debug({ removed }, 'purged expired oidc rows'))
      .catch((error) => logger.warn({ err: error }, 'purge of expired rows failed'));
  }, intervalMs);
  purge.unref();
  return async () => clearInterval(purge);
}
