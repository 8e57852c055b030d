import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

/** Paths pino replaces with "[redacted]": credentials and tokens never reach the logs. */
export const REDACT_PATHS = [
  'password',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'subject_token',
  'actor_token',
  'code_verifier',
  'authorization',
  'cookie',
  'dpop',
  '*.password',
  '*.secret',
  '*.client_secret',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.subject_token',
  '*.actor_token',
  '*.code_verifier',
  '*.authorization',
  '*.cookie',
  '*.dpop',
  'req.headers.authorization',
  'req.headers.dpop',
  'req.headers.cookie',
  'req.headers["client-cert"]',
  'res.headers["set-cookie"]',
];

/** Query strings of URLs and `name=value` pairs of credential parameters, wherever they appear in a text. */
const URL_QUERY = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#"'`]*)\?[^\s#"'`]*/gi;
const SECRET_PAIR =
  /\b(client_secret|client_assertion|code_verifier|code|(?:access_|refresh_|id_|subject_|actor_)?token|id_token_hint|password|secret|state|nonce|xsrf)=[^&\s"'`]*/gi;

/** Removes query strings and credential parameters from a message or stack. */
export function scrub(text: string): string {
  return text.replace(URL_QUERY, '$1?[redacted]').replace(SECRET_PAIR, '$1=[redacted]');
}

/**
 * The `err` serializer: an allow-list of fields (never the arbitrary properties errors carry,
 * like a TypeError's `input`/`base` URL or a driver's `detail` with row values), messages and
 * stacks scrubbed of query strings and credential parameters, causes serialized the same way.
 */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) return { message: scrub(String(error)) };
  const e = error as Error & { code?: unknown; status?: unknown; statusCode?: unknown; error?: unknown; error_description?: unknown };
  const out: Record<string, unknown> = { type: e.constructor?.name ?? 'Error', message: scrub(String(e.message ?? '')) };
  for (const key of ['code', 'status', 'statusCode', 'error', 'error_description'] as const) {
    if (typeof e[key] === 'string' || typeof e[key] === 'number') out[key] = typeof e[key] === 'string' ? scrub(e[key]) : e[key];
  }
  if (typeof e.stack === 'string') out.stack = scrub(e.stack);
  if (e.cause !== undefined && depth < 5) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

/** How the logs are written: JSON lines, or human-readable lines for a developer's terminal. */
export type LogFormat = 'json' | 'pretty';

/**
 * Pretty only for a person watching: no destination given (tests and embedders pass one and get
 * JSON), stdout is a terminal, and not production. Piped or redirected output (a log shipper,
 * `> file`, a container runtime) stays JSON.
 */
export function logFormat(options: { destination?: unknown; stdoutIsTTY: boolean; production: boolean }): LogFormat {
  return options.destination === undefined && options.stdoutIsTTY && !options.production ? 'pretty' : 'json';
}

/** pino-pretty's stream factory, as far as Custos uses it. */
type PrettyFactory = (options: Record<string, unknown>) => pino.DestinationStream;

/**
 * Loads the pretty-printer (`pino-pretty`, a development dependency) only when wanted; undefined
 * when it is not installed (e.g. an image with production dependencies only).
 */
function loadPinoPretty(): PrettyFactory | undefined {
  try {
    const loaded = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    return typeof loaded === 'function' ? loaded : loaded.default;
  } catch {
    return undefined;
  }
}

/** One readable line per event on stdout: time, level, message, then the event's other fields. */
function prettyDestination(factory: PrettyFactory): pino.DestinationStream {
  return factory({
    destination: 1,
    sync: false,
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'service',
    singleLine: true,
  });
}

/**
 * Logger (pino) with secret redaction. Without a destination it writes to stdout
 * asynchronously: lines written while a write is in flight go out together in the next one
 * (one system call for many access lines under load), and pino flushes what is pending
 * synchronously when the process exits. JSON lines, except on a developer's terminal
 * ({@link logFormat}), where `pino-pretty` (loaded only then) prints them for people.
 */
export function createLogger(options: {
  level: string;
  destination?: pino.DestinationStream;
  production?: boolean;
  stdoutIsTTY?: boolean;
  /** Tests: another way to find the pretty-printer. */
  loadPretty?: () => PrettyFactory | undefined;
}): Logger {
  const format = logFormat({ destination: options.destination, stdoutIsTTY: options.stdoutIsTTY ?? process.stdout.isTTY === true, production: options.production ?? false });
  const pretty = format === 'pretty' ? (options.loadPretty ?? loadPinoPretty)() : undefined;
  const logger = pino(
    {
      level: options.level,
      base: { service: 'custos' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: (error: unknown) => serializeError(error) },
    },
    options.destination ?? (pretty ? prettyDestination(pretty) : pino.destination({ dest: 1, sync: false })),
  );
  if (format === 'pretty' && !pretty) logger.debug('pino-pretty is not installed: JSON logs (npm install pino-pretty for readable ones)');
  return logger;
}
