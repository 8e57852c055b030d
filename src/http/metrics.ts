import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one Custos process (an explicit registry, no global state). */
export interface Metrics {
  registry: Registry;
  /** The Prometheus text `/metrics` serves: this registry's, or (in a cluster worker) all workers'. */
  exposition(): Promise<string>;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  tokensIssued: Counter<'grant_type'>;
  tokenErrors: Counter<'grant_type' | 'error'>;
  events: EventMetrics;
  ssf: SsfMetrics;
  secretVerifications: Counter<'outcome'>;
  /**
   * Outcomes of anonymous requests (no signed-in user), counted instead of audited:
   * `login.cancel` (an interaction cancelled before signing in), `logout` (a logout confirmed
   * without a signed-in user).
   */
  anonymousOutcomes: Counter<'action'>;
}

/** Outbox relay metrics (issue 9), set by `src/events/relay.ts`. */
export interface EventMetrics {
  /** Unpublished outbox rows. */
  backlog: Gauge;
  /** Age in seconds of the oldest unpublished row (0 when none). */
  oldestAge: Gauge;
  published: Counter;
  /** Publish attempts the broker did not fully acknowledge. */
  publishFailures: Counter;
  /** Re-sent events the broker dropped as duplicates (crash recovery; unexpected otherwise). */
  duplicates: Counter;
  /** Outbox commit → broker receipt. */
  publishLatency: Histogram;
}

/** SSF transmitter metrics per stream (issue 17), set by `src/ssf/push-deliverer.ts`. */
export interface SsfMetrics {
  /** SETs a push receiver accepted (2xx). */
  delivered: Counter<'stream_id'>;
  /** Failed pushes: `transient` (retried), `permanent` (the stream was paused). */
  failures: Counter<'stream_id' | 'kind'>;
  /** Undelivered SETs and outbox rows not yet taken, per stream that is not disabled. */
  backlog: Gauge<'stream_id'>;
  /** Age in seconds of the oldest undelivered event of the stream (0 when none). */
  lag: Gauge<'stream_id'>;
  /** Outbox commit → receiver's 2xx (IAM events; not verification). */
  deliveryLatency: Histogram;
}

function createSsfMetrics(registry: Registry): SsfMetrics {
  return {
    delivered: new Counter({ name: 'custos_ssf_push_delivered_total', help: 'SETs accepted by SSF push receivers', labelNames: ['stream_id'], registers: [registry] }),
    failures: new Counter({
      name: 'custos_ssf_push_failures_total',
      help: 'Failed SSF pushes (transient: retried; permanent: stream paused)',
      labelNames: ['stream_id', 'kind'],
      registers: [registry],
    }),
    backlog: new Gauge({ name: 'custos_ssf_stream_backlog', help: 'Events an SSF stream has not delivered yet', labelNames: ['stream_id'], registers: [registry] }),
    lag: new Gauge({
      name: 'custos_ssf_stream_lag_seconds',
      help: 'Age of the oldest event an SSF stream has not delivered (0 when none)',
      labelNames: ['stream_id'],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'custos_ssf_push_latency_seconds',
      help: 'Outbox commit to SSF push receiver acceptance',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
}

function createEventMetrics(registry: Registry): EventMetrics {
  return {
    backlog: new Gauge({ name: 'custos_events_outbox_backlog', help: 'IAM events in the outbox not yet published', registers: [registry] }),
    oldestAge: new Gauge({
      name: 'custos_events_outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished IAM event (0 when none)',
      registers: [registry],
    }),
    published: new Counter({ name: 'custos_events_published_total', help: 'IAM events acknowledged by the broker', registers: [registry] }),
    publishFailures: new Counter({
      name: 'custos_events_publish_failures_total',
      help: 'Publish attempts not fully acknowledged by the broker (retried)',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'custos_events_broker_duplicates_total',
      help: 'Re-sent IAM events the broker dropped as duplicates',
      registers: [registry],
    }),
    publishLatency: new Histogram({
      name: 'custos_events_publish_latency_seconds',
      help: 'Outbox commit to broker receipt',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
}

export function createMetrics(options: { exposition?: () => Promise<string> } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'custos_' });
  return {
    registry,
    exposition: options.exposition ?? (() => registry.metrics()),
    requests: new Counter({
      name: 'custos_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'custos_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    tokensIssued: new Counter({
      name: 'custos_tokens_issued_total',
      help: 'Successful token endpoint responses by grant type',
      labelNames: ['grant_type'],
      registers: [registry],
    }),
    tokenErrors: new Counter({
      name: 'custos_token_errors_total',
      help: 'Token endpoint errors by grant type and OAuth error code',
      labelNames: ['grant_type', 'error'],
      registers: [registry],
    }),
    events: createEventMetrics(registry),
    ssf: createSsfMetrics(registry),
    secretVerifications: new Counter({
      name: 'custos_client_secret_verifications_total',
      help: 'argon2id client secret verifications (match, mismatch, overloaded: refused without verifying)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    anonymousOutcomes: new Counter({
      name: 'custos_anonymous_outcomes_total',
      help: 'Anonymous cancels (login.cancel) and logouts (logout): counted, not audited',
      labelNames: ['action'],
      registers: [registry],
    }),
  };
}

const SSF_ROUTES = new Set(['/.well-known/ssf-configuration', '/ssf/streams', '/ssf/status', '/ssf/subjects:add', '/ssf/subjects:remove', '/ssf/verify']);

const KNOWN_ROUTES = new Set([
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/jwks',
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/auth',
  '/me',
  '/session/end',
  '/session/end/confirm',
  '/healthz',
  '/readyz',
  '/metrics',
]);

/** A low-cardinality route label for a request path. */
export function routeLabel(path: string): string {
  if (KNOWN_ROUTES.has(path)) return path;
  if (path.startsWith('/interaction/')) return '/interaction/:uid';
  if (path.startsWith('/auth/')) return '/auth/:uid';
  if (path.startsWith('/admin/')) return '/admin';
  if (path.startsWith('/ssf/poll/')) return '/ssf/poll/:stream_id';
  if (path.startsWith('/ssf/') || path === '/.well-known/ssf-configuration') return SSF_ROUTES.has(path) ? path : 'other';
  return 'other';
}
