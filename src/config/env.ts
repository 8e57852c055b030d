import { z } from 'zod';
import { addressListSchema } from './address-list.js';

const port = z.coerce.number().int().min(0).max(65_535);
const csv = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean));

/**
 * Environment variables read by Custos. This schema is the only reader of `process.env`.
 * Every variable is documented in README.md ("Configuration").
 */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('::'),
  PORT: port.default(8443),
  /** Admin API listener (mutual TLS required); 0 picks a free port. */
  ADMIN_PORT: port.default(9443),
  ISSUER: z.url({ protocol: /^https$/, error: 'an https URL, e.g. https://auth.example.com (https is required)' }).optional(),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'a postgres:// or postgresql:// URL' }).optional(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(20),
  /** Processes serving the listeners (src/cluster/); unset: the cores available to the process, 1 when NODE_ENV=test. */
  WORKERS: z.coerce.number().int().min(1).max(256).optional(),
  DATA_DIR: z.string().min(1).default('.data'),
  EMBEDDED_PG_PORT: port.default(54329),
  KEYS_DIR: z.string().min(1).optional(),
  CONFIG_DIR: z.string().min(1).default('config'),
  /** Development with the demo config only (ignored otherwise): the demo `web-bff` client's URIs use this port instead of 3000. */
  BFF_PORT: z.coerce.number().int().min(1).max(65_535).optional(),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  TLS_CLIENT_CA_FILE: z.string().min(1).optional(),
  TRUST_PROXY: addressListSchema.optional(),
  METRICS_ALLOW: addressListSchema.prefault('127.0.0.1,::1'),
  COOKIE_KEYS: csv.pipe(z.array(z.string().min(32, 'each cookie key needs at least 32 characters')).min(1)).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // oidc-provider caps its own endpoints at 56 KiB; a larger limit would never answer 413 there.
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(56 * 1024).default(56 * 1024),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  PURGE_INTERVAL_MS: z.coerce.number().int().min(1000).default(60_000),
  // How long audit records are kept; the purge job deletes older ones.
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(100 * 366).default(365),
  // argon2id cost of user passwords (RFC 9106; OWASP baseline 19 MiB, t=2, p=1).
  ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).max(4 * 1024 * 1024).default(19_456),
  ARGON2_TIME_COST: z.coerce.number().int().min(1).max(20).default(2),
  ARGON2_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),
  // Brute-force protection of the login page (counted in PostgreSQL, across instances).
  LOGIN_MAX_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).max(1000).default(5),
  LOGIN_MAX_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).max(100_000).default(50),
  LOGIN_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(900),
  LOGIN_LOCK_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(900),
  LOGIN_DELAY_MS: z.coerce.number().int().min(0).max(10_000).default(250),
  // IAM events (README "IAM events"). Unset EVENTS_SINK: `log` in development, `none` otherwise.
  EVENTS_SINK: z.enum(['pulsar-ws', 'pulsar', 'log', 'none']).optional(),
  EVENTS_AUDIENCE: csv.pipe(z.array(z.string().min(1)).min(1)).prefault('urn:custos:iam-events'),
  EVENTS_TOPIC: z
    .string()
    .regex(/^persistent:\/\/[\w.-]+\/[\w.-]+\/[\w.-]+$/, 'expected persistent://tenant/namespace/topic')
    .default('persistent://public/default/custos-iam-events'),
  EVENTS_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
  EVENTS_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(600_000).default(1000),
  EVENTS_RETRY_MAX_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  EVENTS_SEND_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  EVENTS_RETENTION_MS: z.coerce.number().int().min(0).default(7 * 24 * 3600 * 1000),
  PULSAR_WS_URL: z
    .url({ protocol: /^wss?$/ })
    // Credentials in the URL would reach logs with it; token auth has PULSAR_TOKEN.
    .refine((value) => !new URL(value).username && !new URL(value).password, 'must not contain credentials (use PULSAR_TOKEN)')
    .optional(),
  PULSAR_SERVICE_URL: z.url({ protocol: /^pulsar(\+ssl)?$/ }).optional(),
  PULSAR_PRODUCER_NAME: z.string().regex(/^[\w.-]{1,64}$/, 'letters, digits, _ . - (at most 64)').default('custos-relay'),
  PULSAR_TOKEN: z.string().min(1).optional(),
  PULSAR_TLS_CA_FILE: z.string().min(1).optional(),
  // SSF transmitter (docs/event-consumers.md "Shared Signals"): push delivery (RFC 8935) and verification.
  SSF_PUSH_CA_FILE: z.string().min(1).optional(),
  // Hosts push receivers may name (`name`, `*.suffix`); unset: any.
  SSF_PUSH_ALLOWED_HOSTS: csv.pipe(z.array(z.string().regex(/^(\*\.)?[A-Za-z0-9.:-]+$/, 'host names, IP literals or *.suffix, comma-separated'))).optional(),
  SSF_PUSH_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  SSF_PUSH_RETRY_MAX_MS: z.coerce.number().int().min(100).max(3_600_000).default(300_000),
  SSF_PUSH_MAX_FAILURES: z.coerce.number().int().min(1).max(10_000).default(20),
  SSF_PAUSED_MAX_EVENTS: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
  /** SSF 1.0 §8.1.1 `inactivity_timeout` of every stream (0: none): an enabled stream without receiver activity that long is paused. */
  SSF_INACTIVITY_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(31_536_000).default(2_592_000),
  /** A stream paused longer than this is disabled and drops what it held (0: no bound). */
  SSF_PAUSED_MAX_SECONDS: z.coerce.number().int().min(0).max(31_536_000).default(1_209_600),
  /** How many push streams the deliverer pushes to at once. */
  SSF_PUSH_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(16),
  SSF_MIN_VERIFICATION_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(10),
  /** RFC 9449 §8: every DPoP proof at the token endpoint must carry a nonce this server gave (`use_dpop_nonce` otherwise). */
  DPOP_REQUIRE_NONCE: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  // Benchmarks only (`npm run bench`): production mode with development keys and the demo config.
  ALLOW_DEV_KEYS_IN_PRODUCTION: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
}).superRefine((env, ctx) => {
  if (env.EVENTS_SINK === 'pulsar-ws' && !env.PULSAR_WS_URL) {
    ctx.addIssue({ code: 'custom', path: ['PULSAR_WS_URL'], message: 'required when EVENTS_SINK=pulsar-ws (e.g. ws://127.0.0.1:8080)' });
  }
  if (env.EVENTS_SINK === 'pulsar' && !env.PULSAR_SERVICE_URL) {
    ctx.addIssue({ code: 'custom', path: ['PULSAR_SERVICE_URL'], message: 'required when EVENTS_SINK=pulsar (e.g. pulsar://127.0.0.1:6650)' });
  }
});

export type Env = z.infer<typeof envSchema>;
