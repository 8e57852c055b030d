import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AppConfig } from '../config/load-config.js';
import { runningEmbeddedPostgres } from '../db/embedded-postgres.js';
import { openDatabase } from '../db/open-database.js';

/** Where a CLI command's database comes from, found before it is opened. */
export type DatabaseOrigin =
  | { kind: 'url' }
  | { kind: 'embedded-running'; dataDir: string; pid: number }
  | { kind: 'embedded-start'; dataDir: string; fresh: boolean };

/**
 * The database `openDatabase` is about to use: DATABASE_URL, the embedded cluster a live process
 * holds under DATA_DIR, or the embedded cluster this command starts (a new, empty one when
 * DATA_DIR holds none yet).
 */
export function databaseOrigin(config: AppConfig, cwd: string): DatabaseOrigin {
  if (config.env.DATABASE_URL) return { kind: 'url' };
  const dataDir = path.resolve(cwd, config.env.DATA_DIR);
  const running = runningEmbeddedPostgres(dataDir);
  if (running) return { kind: 'embedded-running', dataDir, pid: running.pid };
  return { kind: 'embedded-start', dataDir, fresh: !existsSync(path.join(dataDir, 'pg', 'PG_VERSION')) };
}

/** A connection string without its password (and without query parameters, which may hold one). */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString();
  } catch {
    return '(unparsable connection string)';
  }
}

/**
 * The one stderr line a CLI command that touches the database prints, e.g.
 * `custos: database postgres://custos@127.0.0.1:54329/custos (embedded, held by process 4711, DATA_DIR=/srv/app/.data)`.
 * Never the password.
 */
export function databaseNotice(url: string, origin: DatabaseOrigin): string {
  const where = redactDatabaseUrl(url);
  switch (origin.kind) {
    case 'url':
      return `custos: database ${where} (DATABASE_URL)`;
    case 'embedded-running':
      return `custos: database ${where} (embedded, held by process ${origin.pid}, DATA_DIR=${origin.dataDir})`;
    case 'embedded-start':
      return origin.fresh
        ? `custos: database ${where} (embedded, NEW empty cluster created for this command in DATA_DIR=${origin.dataDir}; not the one you meant? set DATABASE_URL or DATA_DIR)`
        : `custos: database ${where} (embedded, started for this command and stopped after it, DATA_DIR=${origin.dataDir})`;
  }
}

/**
 * Opens the configured database for a CLI command ({@link openDatabase}) and says on stderr which
 * one it uses (one line, no password), so that a command run in another directory cannot quietly
 * work on a fresh embedded cluster there.
 */
export async function openCliDatabase(
  config: AppConfig,
  cwd: string = process.cwd(),
  notice: (line: string) => void = (line) => void process.stderr.write(`${line}\n`),
): Promise<Awaited<ReturnType<typeof openDatabase>>> {
  const origin = databaseOrigin(config, cwd);
  const opened = await openDatabase(config, cwd);
  notice(databaseNotice(opened.url, origin));
  return opened;
}
