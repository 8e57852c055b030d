import path from 'node:path';
import type { Kysely } from 'kysely';
import type { AppConfig } from '../config/load-config.js';
import { createDb } from './create-db.js';
import type { Database } from './database.js';
import { runningEmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.js';

/**
 * The database of a configuration: DATABASE_URL, or the embedded PostgreSQL under DATA_DIR
 * (attached to when another process already runs it, started otherwise).
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
  const running = url ? undefined : runningEmbeddedPostgres(path.resolve(cwd, env.DATA_DIR));
  if (running) {
    log.info(`using the embedded PostgreSQL of process ${running.pid} in ${env.DATA_DIR}`);
    url = running.connectionString;
  }
  if (!url) {
    log.info(`starting embedded PostgreSQL in ${env.DATA_DIR}`);
    const embedded = await startEmbeddedPostgres({ dataDir: path.resolve(cwd, env.DATA_DIR), port: env.EMBEDDED_PG_PORT, log: log.debug });
    url = embedded.connectionString;
    stopEmbedded = () => embedded.stop();
  }
  const db = createDb(url, { max: env.DATABASE_POOL_MAX });
  return {
    db,
    url,
    async close() {
      await db.destroy();
      await stopEmbedded();
    },
  };
}
