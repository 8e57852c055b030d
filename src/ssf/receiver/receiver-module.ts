import type { Kysely } from 'kysely';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { SsfReceiverConfig } from '../../config/ssf-receiver.js';
import type { Database } from '../../db/database.js';
import type { AppState } from '../../http/middleware.js';
import type { SessionService } from '../../iam/session.service.js';
import { pruneReceivedSets } from './received-set.repository.js';
import { createReceiverRoutes } from './receiver.routes.js';
import { createReceiverService } from './receiver.service.js';
import { createSetVerifier, type Transmitter } from './set-verifier.js';
import { transmitterKeys } from './transmitter-keys.js';

/** How often received-SET records past every transmitter's `iat` window are pruned. */
const PRUNE_INTERVAL_MS = 10 * 60 * 1000;

export interface SsfReceiverDeps {
  /** The `ssf_receiver` config key; absent or without transmitters, the receiver is off. */
  config: SsfReceiverConfig | undefined;
  /** The config file it came from and the directory relative paths resolve against (for errors, `tls_ca_file`). */
  file: string;
  cwd: string;
  db: Kysely<Database>;
  logger: Logger;
  issuer: string;
  registry: Registry;
  sessions?: Pick<SessionService, 'revokeInTransaction'>;
  bodyLimitBytes: number;
  pruneIntervalMs?: number;
}

/**
 * The SSF receiver room (issue 17): Custos consumes CAEP and RISC SETs pushed by trusted
 * transmitters (RFC 8935) and acts on them. Returns its routes for the public listener and `stop`.
 * Off (no route, no timer) when no transmitter is configured.
 */
export function createSsfReceiverModule(deps: SsfReceiverDeps): { routes: Middleware<AppState>; stop(): Promise<void> } {
  const configured = deps.config?.transmitters ?? [];
  if (configured.length === 0) return { routes: (_ctx, next) => next(), stop: async () => {} };
  const config = deps.config!;
  const transmitters = new Map<string, Transmitter>(
    configured.map((transmitter, index) => [transmitter.issuer, { config: transmitter, keys: transmitterKeys(transmitter, index, deps.file, deps.cwd) }]),
  );
  const metrics = {
    received: new Counter({ name: 'custos_ssf_receiver_requests_total', help: 'Push requests to the SSF receiver endpoint', registers: [deps.registry] }),
    accepted: new Counter({
      name: 'custos_ssf_receiver_sets_total',
      help: 'Verified SETs by transmitter and outcome (applied, recorded, unknown_subject, ignored)',
      labelNames: ['transmitter', 'outcome'] as const,
      registers: [deps.registry],
    }),
    refused: new Counter({
      name: 'custos_ssf_receiver_refused_total',
      help: 'Refused SETs by transmitter (unknown when the issuer is not trusted) and reason (RFC 8935 error code, replayed, ...)',
      labelNames: ['transmitter', 'reason'] as const,
      registers: [deps.registry],
    }),
  };
  const log = deps.logger.child({ component: 'ssf-receiver' });
  // A received jti must be remembered as long as its SET could still pass the iat check.
  const retentionSeconds = Math.max(...configured.map((transmitter) => transmitter.max_age_seconds)) + 2 * config.clock_skew_seconds + 60;
  const prune = () =>
    pruneReceivedSets(deps.db, retentionSeconds)
      .then((removed) => removed > 0 && log.debug({ removed }, 'received SET records pruned'))
      .catch((error: unknown) => log.warn({ err: error }, 'pruning received SET records failed'));
  const timer = setInterval(prune, deps.pruneIntervalMs ?? PRUNE_INTERVAL_MS);
  timer.unref();
  void prune();
  log.info({ transmitters: configured.map((transmitter) => transmitter.id) }, 'SSF receiver on');
  return {
    routes: createReceiverRoutes({
      verify: createSetVerifier({ transmitters, clockSkewSeconds: config.clock_skew_seconds }),
      service: createReceiverService({ db: deps.db, issuer: deps.issuer, sessions: deps.sessions }),
      logger: deps.logger,
      metrics,
      bodyLimitBytes: deps.bodyLimitBytes,
    }),
    stop: async () => clearInterval(timer),
  };
}
