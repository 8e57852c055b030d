import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/load-config.js';
import type { Database } from '../db/database.js';
import type { EventMetrics } from '../http/metrics.js';
import type { SigningJwk } from '../keys/signing-keys.js';
import { createRelay, type Relay } from './relay.js';
import { createSetSigner, type SetSigner } from './security-event-token.js';
import type { EventSink } from './sinks/event-sink.js';
import { createLogSink } from './sinks/log-sink.js';
import { createPulsarClientSink } from './sinks/pulsar-client-sink.js';
import { createPulsarWsSink } from './sinks/pulsar-ws-sink.js';

/** What the composition root passes to {@link startEvents}. */
export interface EventsDeps {
  config: AppConfig;
  cwd: string;
  db: Kysely<Database>;
  databaseUrl: string;
  issuer: string;
  /** The signing key of the moment (SIGHUP reloads swap it). */
  currentKey: () => SigningJwk;
  logger: Logger;
  metrics: EventMetrics;
  /** Replaces the ES256 SET signer (default: jose over `currentKey`). */
  sign?: SetSigner;
}

/** The sink EVENTS_SINK names; `none` (no relay: events stay in the outbox) gives undefined. */
export async function createEventSink(config: AppConfig, cwd: string, logger: Logger): Promise<EventSink | undefined> {
  const { env } = config;
  const kind = env.EVENTS_SINK ?? (env.NODE_ENV === 'development' ? 'log' : 'none');
  const caFile = env.PULSAR_TLS_CA_FILE ? path.resolve(cwd, env.PULSAR_TLS_CA_FILE) : undefined;
  switch (kind) {
    case 'none':
      return undefined;
    case 'log':
      return createLogSink(logger);
    case 'pulsar-ws':
      return createPulsarWsSink({
        url: env.PULSAR_WS_URL!,
        topic: env.EVENTS_TOPIC,
        producerName: env.PULSAR_PRODUCER_NAME,
        token: env.PULSAR_TOKEN,
        ca: caFile ? readFileSync(caFile, 'utf8') : undefined,
        sendTimeoutMs: env.EVENTS_SEND_TIMEOUT_MS,
      });
    case 'pulsar':
      return createPulsarClientSink({
        serviceUrl: env.PULSAR_SERVICE_URL!,
        topic: env.EVENTS_TOPIC,
        producerName: env.PULSAR_PRODUCER_NAME,
        token: env.PULSAR_TOKEN,
        tlsCaFile: caFile,
        sendTimeoutMs: env.EVENTS_SEND_TIMEOUT_MS,
      });
  }
}

/** Starts the outbox relay for the configured sink; `stop` ends the relay (which closes the sink). */
export async function startEvents(deps: EventsDeps): Promise<{ relay?: Relay; stop(): Promise<void> }> {
  const { env } = deps.config;
  const sink = await createEventSink(deps.config, deps.cwd, deps.logger);
  if (!sink) {
    deps.logger.info('EVENTS_SINK=none: IAM events stay in the outbox');
    return { stop: async () => {} };
  }
  const relay = createRelay({
    db: deps.db,
    databaseUrl: deps.databaseUrl,
    sink,
    sign: deps.sign ?? createSetSigner(deps.currentKey),
    issuer: deps.issuer,
    audience: env.EVENTS_AUDIENCE.length === 1 ? env.EVENTS_AUDIENCE[0]! : env.EVENTS_AUDIENCE,
    logger: deps.logger,
    metrics: deps.metrics,
    batchSize: env.EVENTS_BATCH_SIZE,
    pollIntervalMs: env.EVENTS_POLL_INTERVAL_MS,
    retryMaxMs: env.EVENTS_RETRY_MAX_MS,
    retentionMs: env.EVENTS_RETENTION_MS,
  });
  return {
    relay,
    stop: () => relay.stop(),
  };
}
