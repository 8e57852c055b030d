import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config/load-config.js';
import { createDb } from './create-db.js';
import type { Database } from './database.js';
import { EmbeddedPostgresError, runningEmbeddedPostgres, startEmbeddedPostgres, stopEmbeddedPostgresProcess } from './embedded-postgres.js';

/**
 * The database of a configuration: DATABASE_URL, or the embedded PostgreSQL under DATA_DIR
 * (attached to when another live process already runs it, started otherwise; one whose process
 * was killed outright is stopped and started anew, so this process stops it on exit).
 */
export async function openDatabase(
  config: AppConfig,
  cwd: string,
  log: { info(message: string): void; debug(message: string): void } = { info: () => {}, debug: () => {} },
): Promise<{ db: Kysely<Database>; url: string; close(): Promise<void> }> {
  const { env } = config;
  let stopEmbedded = async () => {};
  let url = env.DATABASE_URL;
  // A live process (a development server) already runs the embedded cluster: use it, leave it running.
  let running = url ? undefined : runningEmbeddedPostgres(path.resolve(cwd, env.DATA_DIR));
  if (running?.orphaned) {
    // Left behind by a server killed outright: nothing else would ever stop it, so this start replaces it.
    log.info(`stopping the embedded PostgreSQL (pid ${running.pid}) in ${env.DATA_DIR} that a stopped custos left running`);
    await stopEmbeddedPostgresProcess(running.pid);
    running = undefined;
  }
  if (running) {
    log.info(`using the embedded PostgreSQL of process ${running.pid} in ${env.DATA_DIR}`);
    url = running.connectionString;
  }
  if (!url) {
    log.info(`starting embedded PostgreSQL in ${env.DATA_DIR}`);
    const embedded = await startEmbeddedPostgres({ dataDir: path.resolve(cwd, env.DATA_DIR), port: env.EMBEDDED_PG_PORT, log: log.debug }).catch(
      (error: Error) => {
        const hint =
          error instanceof EmbeddedPostgresError
            ? error.hint
            : 'stop the other server (is custos already running?), or choose another DATA_DIR/EMBEDDED_PG_PORT, or set DATABASE_URL';
        throw new Error(`embedded PostgreSQL (DATA_DIR=${env.DATA_DIR}, EMBEDDED_PG_PORT=${env.EMBEDDED_PG_PORT}) did not start: ${error.message}; ${hint}`, {
          // An EmbeddedPostgresError already names its cause; PostgreSQL's last error line is in error.cause.
          cause: error instanceof EmbeddedPostgresError ? undefined : error.cause,
        });
      },
    );
    url = embedded.connectionString;
    stopEmbedded = () => embedded.stop();
  }
  const db = createDb(url, { max: env.DATABASE_POOL_MAX });
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    await db.destroy();
    await stopEmbedded();
    const where = new URL(url);
    const source = env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL';
    throw new Error(`${source}: cannot use PostgreSQL at ${where.host}${where.pathname}: ${describeDbError(error)}`, { cause: error });
  }
  return {
    db,
    url,
    async close() {
      await db.destroy();
      await stopEmbedded();
    },
  };
}

/** The driver's reason (`ECONNREFUSED`, `password authentication failed for user …`), on one line. */
function describeDbError(error: unknown): string {
  const e = error as { message?: string; code?: string; errors?: Array<{ message?: string }> };
  // Node reports a refused dual-stack connection as an AggregateError with an empty message.
  const message = e.message || e.errors?.map((inner) => inner.message).join('; ') || '';
  return [e.code, message].filter(Boolean).join(' ') || 'unknown error';
}
