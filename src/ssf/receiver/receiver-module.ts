import type { Kysely } from 'kysely';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Registry } from 'prom-client';
import { ConfigError } from '../../config/config-error.js';
import type { SsfReceiverConfig } from '../../config/ssf-receiver.js';
import type { Database } from '../../db/database.js';
import type { AppState } from '../../http/middleware.js';
import type { SessionService } from '../../iam/session.service.js';
import { pruneReceivedSets } from './received-set.repository.js';
import { createReceiverRoutes } from './receiver.routes.js';
import { createReceiverService } from './receiver.service.js';
import { createSetVerifier, type Transmitter } from './set-verifier.js';
import { transmitterCa } from './https-client.js';
import { startPoller } from './poller.js';
import { createReceiverMetrics } from './receiver-metrics.js';
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
 * The SSF receiver room (issue 17): Custos consumes CAEP and RISC SETs that trusted transmitters
 * push (RFC 8935) or that it polls from them (RFC 8936), and acts on them. Returns its routes for the public listener and `stop`.
 * Off (no route, no timer, no poller) when no transmitter is configured.
 */
export function createSsfReceiverModule(deps: SsfReceiverDeps): { routes: Middleware<AppState>; stop(): Promise<void> } {
  const configured = deps.config?.transmitters ?? [];
  if (configured.length === 0) return { routes: (_ctx, next) => next(), stop: async () => {} };
  const config = deps.config!;
  const cas = configured.map((transmitter, index) => transmitterCa(transmitter, index, deps.file, deps.cwd));
  const authorizations = configured.map((transmitter, index) => transmitter.poll && readAuthorization(transmitter.poll.authorization_file, index, deps.file, deps.cwd));
  const transmitters = new Map<string, Transmitter>(configured.map((transmitter, index) => [transmitter.issuer, { config: transmitter, keys: transmitterKeys(transmitter, cas[index]) }]));
  const metrics = createReceiverMetrics(deps.registry);
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
  const verify = createSetVerifier({ transmitters, clockSkewSeconds: config.clock_skew_seconds });
  const service = createReceiverService({ db: deps.db, issuer: deps.issuer, sessions: deps.sessions });
  const pollers = configured.flatMap((transmitter, index) =>
    transmitter.poll
      ? [startPoller({ transmitter, poll: transmitter.poll, authorization: authorizations[index]!, ca: cas[index], verify, service, metrics, logger: deps.logger, bodyLimitBytes: deps.bodyLimitBytes })]
      : [],
  );
  log.info({ transmitters: configured.map((transmitter) => transmitter.id), polled: configured.filter((transmitter) => transmitter.poll).map((transmitter) => transmitter.id) }, 'SSF receiver on');
  return {
    routes: createReceiverRoutes({ verify, service, logger: deps.logger, metrics, bodyLimitBytes: deps.bodyLimitBytes }),
    stop: async () => {
      clearInterval(timer);
      await Promise.all(pollers.map((poller) => poller.stop()));
    },
  };
}

/** The `Authorization` header value in `poll.authorization_file` (trimmed); unreadable or empty stops start-up naming the field. */
function readAuthorization(path: string, index: number, file: string, cwd: string): string {
  const field = `${file}: ssf_receiver.transmitters.${index}.poll.authorization_file`;
  let value: string;
  try {
    value = readFileSync(resolve(cwd, path), 'utf8').trim();
  } catch (error) {
    throw new ConfigError([`${field}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(value)) throw new ConfigError([`${field}: ${path} must hold one Authorization header value (e.g. "Bearer <token>")`]);
  return value;
}
