import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEMO_CLIENT_SECRETS } from '../config/demo-secrets.js';
import { startPrimary } from '../cluster/primary.js';
import { workerCount } from '../cluster/sizing.js';
import { serveWorker } from '../cluster/worker.js';
import { loadConfig, loadEnv } from '../config/load-config.js';
import { migrateToLatest } from '../db/migrator.js';
import { startCustos, type RunningCustos } from '../main.js';
import { openCliDatabase } from './database-notice.js';

/** What `serve` needs of a running server: one process (startCustos) or the primary of its workers. */
type Served = Pick<RunningCustos, 'config' | 'issuer' | 'logger' | 'devPki' | 'demoUser' | 'reload' | 'stop'>;

function banner(custos: Served): string {
  const lines = [`Custos is running at ${custos.issuer} (pid ${process.pid}; stop it with: kill -TERM ${process.pid})`];
  if (custos.devPki && custos.config.files.demo) {
    const ca = path.relative(process.cwd(), custos.devPki.ca.certPath);
    lines.push(
      '',
      'Try it (demo config, dev CA):',
      `  curl --cacert ${ca} ${custos.issuer}/.well-known/openid-configuration`,
      `  curl --cacert ${ca} -u reporting-job:${DEMO_CLIENT_SECRETS['reporting-job']} \\`,
      `    -d grant_type=client_credentials -d scope=orders:read ${custos.issuer}/token`,
    );
    const client = custos.devPki.clients['orders-api'];
    if (client) {
      const rel = (file: string) => path.relative(process.cwd(), file);
      lines.push(
        '  # mTLS client (certificate-bound token):',
        `  curl --cacert ${ca} --cert ${rel(client.certPath)} --key ${rel(client.keyPath)} \\`,
        `    -d client_id=orders-api -d grant_type=client_credentials -d scope=orders:read ${custos.issuer}/token`,
      );
    }
  }
  if (custos.demoUser) {
    const bffPort = custos.config.env.BFF_PORT;
    lines.push(
      '',
      'Demo user created (no user existed; development only):',
      `  username: ${custos.demoUser.username}`,
      `  password: ${custos.demoUser.password}`,
      '  role:     orders-reader',
      'Log in through the demo BFF (in a second terminal):',
      `  ${custos.issuer === 'https://localhost:8443' ? '' : `CUSTOS_ISSUER=${custos.issuer} `}${bffPort ? `BFF_PORT=${bffPort} ` : ''}npm run example:bff     # then open http://localhost:${bffPort ?? 3000}`,
    );
  }
  return lines.join('\n');
}

/**
 * `custos serve`: start, print the banner, reload keys on SIGHUP, drain on SIGTERM/SIGINT.
 * With WORKERS > 1 this process is the primary of that many workers (src/cluster/), which it
 * reloads and drains; each worker runs {@link serveWorker}.
 * The handlers are in place before anything starts (a signal's default action would kill the
 * process and leave the embedded PostgreSQL running): a SIGTERM during start-up stops the
 * server as soon as it is up, and the banner, which tells a watcher the server is ready, is
 * only printed once a signal would be handled.
 */
export async function serveCommand(): Promise<void> {
  if (cluster.isWorker) return serveWorker();
  const workers = workerCount(loadEnv());
  let custos: Served | undefined;
  let requested: string | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    requested ??= signal;
    if (!custos || stopping) return;
    stopping = true;
    custos.logger.info({ signal: requested }, 'shutting down');
    custos.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    // During start-up the keys being loaded are the newest ones anyway.
    custos?.reload().catch((error) => custos?.logger.error({ err: error }, 'reload failed; still serving with the previous keys'));
  });
  custos =
    workers > 1
      ? await startPrimary({
          workers,
          // Every worker has stopped already (and the embedded PostgreSQL).
          onCrashLoop(message) {
            process.stderr.write(`custos: ${message}\n`);
            process.exit(1);
          },
        })
      : await startCustos();
  if (requested) return stop(requested);
  process.stdout.write(`${banner(custos)}\n`);
  watchNpmParent((npmPid) => {
    custos.logger.warn(
      { npmPid },
      `npm (pid ${npmPid}) exited without stopping the server (npm passes on SIGINT and SIGTERM only; send SIGHUP to pid ${process.pid} to reload keys)`,
    );
    stop('npm exited');
  });
}

/** The parent of this process now: /proc on Linux; elsewhere the first parent while it lives, else 1. */
function currentParent(first: number): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      process.kill(first, 0);
      return first;
    } catch {
      return 1;
    }
  }
}

/**
 * Under `npm start` (`exec node ...`: npm is the parent) npm passes SIGINT and SIGTERM on but
 * dies of any other signal, SIGHUP included, and would leave this server running with no parent.
 * Calls `onGone` once npm is gone.
 */
function watchNpmParent(onGone: (npmPid: number) => void): void {
  if (!process.env.npm_lifecycle_event) return;
  const npmPid = process.ppid;
  const timer = setInterval(() => {
    if (currentParent(npmPid) === npmPid) return;
    clearInterval(timer);
    onGone(npmPid);
  }, 250);
  timer.unref();
}

/** `custos migrate`: apply pending migrations and exit. */
export async function migrateCommand(): Promise<void> {
  const { db, close } = await openCliDatabase(loadConfig());
  try {
    const result = await migrateToLatest(db);
    const applied = result.results?.map((r) => r.migrationName) ?? [];
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await close();
  }
}
