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
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["client-cert"]',
  'res.headers["set-cookie"]',
];

/** JSON logger (pino) with secret redaction. */
export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    { level: options.level, base: { service: 'custos' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    options.destination,
  );
}
