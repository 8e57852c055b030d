import type { BlockList } from 'node:net';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { registerTokenExchange, type TokenExchangeDeps } from '../grants/token-exchange/token-exchange.grant.js';
import { clientAddressOf } from '../http/client-address.js';
import type { Metrics } from '../http/metrics.js';
import type { SigningKeySet } from '../keys/signing-keys.js';
import type { RecordOnce } from './replay-detection.js';
import { auditProviderEvents } from './logout.js';
import { createProvider, type ProviderDeps } from './provider-factory.js';

const GRANT_TYPES = new Set(['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange']);
const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'server_error',
]);

/** Metric label for a request's grant type: client-chosen strings never become label values. */
function grantLabel(ctx: KoaContextWithOIDC): string {
  const value = ctx.oidc?.params?.grant_type;
  return typeof value === 'string' && GRANT_TYPES.has(value) ? value : 'other';
}

export interface ProviderBuilderDeps extends Omit<ProviderDeps, 'keys' | 'extend' | 'recordOnce'>, Pick<TokenExchangeDeps, 'verificationKeys' | 'signingKid'> {
  db: Kysely<Database>;
  logger: Logger;
  metrics: Metrics;
  /** TRUST_PROXY: audit records of provider events name the client behind these proxies. */
  trustedProxies?: BlockList;
  /** Replay detection in PostgreSQL (src/oidc/replay-detection.ts). */
  recordOnce: RecordOnce;
}

/**
 * Returns how to build the provider for a signing key set (at start and on every key reload):
 * the oidc-provider instance with provider-event auditing, the token-exchange grant, error
 * logging, the token metrics and the count of anonymous logouts.
 */
export function createProviderBuilder(deps: ProviderBuilderDeps): (keys: SigningKeySet) => Provider {
  const { db, logger, metrics, verificationKeys, signingKid, trustedProxies, recordOnce, ...providerDeps } = deps;
  const clientAddress = clientAddressOf(trustedProxies);
  return (keys) => {
    const provider = createProvider({
      ...providerDeps,
      keys,
      recordOnce: (id, iss, expiresIn) => recordOnce({ id, payload: { iss, kind: 'ReplayDetection' }, expiresIn }),
      extend: (built) => {
        auditProviderEvents(built, db, logger, clientAddress);
        registerTokenExchange({
          provider: built,
          db,
          issuer: deps.issuer,
          verificationKeys,
          signingKid,
          policies: deps.files.token_exchange.policies,
          serves: deps.policy.serves,
          minimumAcr: deps.policy.minimumAcr,
        });
      },
    });
    provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => (ctx.state as { log?: Logger }).log?.error({ err: error }, 'provider server_error'));
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => metrics.tokensIssued.inc({ grant_type: grantLabel(ctx) }));
    // Logouts without a signed-in user are counted, not audited (auditProviderEvents skips them).
    provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
      if (!ctx.oidc.session?.accountId) metrics.anonymousOutcomes.inc({ action: 'logout' });
    });
    provider.on('grant.error', (ctx: KoaContextWithOIDC, error: { error?: string }) =>
      metrics.tokenErrors.inc({ grant_type: grantLabel(ctx), error: OAUTH_ERRORS.has(error.error ?? '') ? error.error! : 'other' }),
    );
    return provider;
  };
}
