/** The flags of `npm run bench` (bench/run.ts), for node:util parseArgs; docs/performance.md documents them. */
export const BENCH_OPTIONS = {
  rounds: { type: 'string', default: '3' },
  seconds: { type: 'string', default: '6' },
  'get-seconds': { type: 'string', default: '3' },
  connections: { type: 'string', default: '32' },
  tokens: { type: 'string', default: '100000' },
  sessions: { type: 'string', default: '10000' },
  'login-concurrency': { type: 'string', default: '8' },
  'floor-seconds': { type: 'string', default: '2' },
  port: { type: 'string', default: '18443' },
  'bare-port': { type: 'string', default: '18444' },
  'pg-port': { type: 'string', default: '54359' },
  profile: { type: 'boolean', default: false },
  only: { type: 'string' },
  /** Custos's WORKERS (1: one process, comparable with the one-process bare oidc-provider). */
  workers: { type: 'string', default: '1' },
  'no-write': { type: 'boolean', default: false },
} as const;
