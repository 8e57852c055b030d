import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ConfigFiles } from '../config/files.js';
import type { Database } from '../db/database.js';
import { purgeInitialAccessTokens } from '../clients/registration.repository.js';
import { purgeExpiredModels } from '../db/oidc-model.repository.js';
import { purgeExpiredExchanges } from '../grants/token-exchange/exchange-record.repository.js';
import { purgeAuditBefore } from '../iam/audit.repository.js';
import { purgeExpiredThrottle } from '../iam/login-throttle.repository.js';
import { purgeClientRevocations, purgeRevokedTokenMarks, purgeSessionRevocations, purgeSubjectRevocations, REVOKED_ACCESS_TOKEN_MODEL } from '../revocation/token-revocation.repository.js';

/** Exchange records (and cut-offs) stay this long past the last token that needs them (clock skew, late audit reads). */
export const PURGE_MARGIN_SECONDS = 3600;

/** Access tokens without a resource-server TTL live this long (the provider's default). */
const DEFAULT_ACCESS_TOKEN_TTL = 300;

export interface PurgeOptions {
  auditRetentionDays: number;
  /** Longest lifetime any token can have: a subject's cut-off is kept this long. */
  longestTokenLifetimeSeconds: number;
}

/** The longest lifetime of a token a subject cut-off can apply to (access tokens and resume tokens). */
export function longestTokenLifetime(files: ConfigFiles): number {
  return Math.max(DEFAULT_ACCESS_TOKEN_TTL, files.token_exchange.max_lifetime, ...files.resource_servers.map((rs) => rs.accessTokenTTL));
}

/** One purge round over every table that holds expiring rows; returns how many rows each lost. */
export async function purgeExpiredRows(db: Kysely<Database>, options: PurgeOptions): Promise<Record<string, number>> {
  return {
    oidc_model: (await purgeExpiredModels(db, { except: [REVOKED_ACCESS_TOKEN_MODEL] })) + (await purgeRevokedTokenMarks(db)),
    login_throttle: await purgeExpiredThrottle(db),
    token_exchange: await purgeExpiredExchanges(db, { marginSeconds: PURGE_MARGIN_SECONDS }),
    subject_revocation: await purgeSubjectRevocations(db, options.longestTokenLifetimeSeconds + PURGE_MARGIN_SECONDS),
    session_revocation: await purgeSessionRevocations(db, options.longestTokenLifetimeSeconds + PURGE_MARGIN_SECONDS),
    client_revocation: await purgeClientRevocations(db, options.longestTokenLifetimeSeconds + PURGE_MARGIN_SECONDS),
    client_initial_access_token: await purgeInitialAccessTokens(db),
    audit_log: await purgeAuditBefore(db, options.auditRetentionDays),
  };
}

/** Runs {@link purgeExpiredRows} every `intervalMs` (unref'd); returns the stop function. */
export function startExpiredPurge(db: Kysely<Database>, intervalMs: number, logger: Logger, options: PurgeOptions): () => Promise<void> {
  const purge = setInterval(() => {
    purgeExpiredRows(db, options)
      .then((removed) => Object.values(removed).some((n) => n > 0) && logger.debug({ removed }, 'purged expired rows'))
      .catch((error) => logger.warn({ err: error }, 'purge of expired rows failed'));
  }, intervalMs);
  purge.unref();
  return async () => clearInterval(purge);
}
