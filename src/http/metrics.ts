import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one Custos process (an explicit registry, no global state). */
export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  tokensIssued: Counter<'grant_type'>;
  tokenErrors: Counter<'grant_type' | 'error'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'custos_' });
  return {
    registry,
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
  };
}

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
  return 'other';
}
