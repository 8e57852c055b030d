import { execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `npm start` exactly as the README says (README.md quick start: `npm install && npm start`), on a fresh test database or (`embedded`) its own
 * embedded PostgreSQL; resolves once the banner is out.
 */
async function npmStart(options: { embedded?: boolean } = {}) {
  const database = await createTestDatabase();
  const work = await mkdtemp(path.join(tmpdir(), 'custos-npm-start-'));
  // initdb runs as an unprivileged postgres user when the tests run as root.
  await chmod(work, 0o755);
  await cp(path.join(ROOT, 'config'), path.join(work, 'config'), { recursive: true });
  const databaseEnv = options.embedded
    ? { DATA_DIR: path.join(work, 'data'), EMBEDDED_PG_PORT: String(await freePort()) }
    : { DATABASE_URL: database.url };
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? work,
    NODE_ENV: 'test',
    PORT: '0',
    ADMIN_PORT: '0',
    HOST: '127.0.0.1',
    ...databaseEnv,
    KEYS_DIR: path.join(work, 'keys'),
    CONFIG_DIR: path.join(work, 'config'),
    SHUTDOWN_TIMEOUT_MS: '2000',
  };
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so the clean-up can stop whatever a failing run leaves behind.
    detached: true,
  });
  let output = '';
  npm.stdout!.on('data', (chunk) => (output += chunk));
  npm.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  let serverPid: number | undefined;
  cleanups.push(async () => {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    if (serverPid && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
    await database.drop();
    await rm(work, { recursive: true, force: true });
  });
  const deadline = Date.now() + 30_000;
  let banner: RegExpExecArray | null = null;
  while (!(banner = /Custos is running at \S+ \(pid (\d+); stop it with: kill -TERM (\d+)\)/.exec(output))) {
    if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not start:\n${output}`);
    await sleep(50);
  }
  serverPid = Number(banner[1]);
  const listening = /"msg":"custos listening"/.test(output) && JSON.parse(output.split('\n').find((line) => line.includes('"custos listening"'))!);
  const postgresPid = options.embedded
    ? Number((await readFile(path.join(work, 'data', 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
    : undefined;
  return { npm, env, serverPid, postgresPid, listening, exited, output: () => output };
}

async function gone(pid: number) {
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  return !alive(pid);
}

describe('npm start stops on the signal the README names (issue 10 #8)', () => {
  it('SIGTERM to the pid the start-up log names stops the server, and npm with it', async () => {
    const started = await npmStart();
    expect(started.listening.pid).toBe(started.serverPid);
    expect(started.serverPid).not.toBe(started.npm.pid);
    process.kill(started.serverPid, 'SIGTERM');
    expect(await gone(started.serverPid)).toBe(true);
    expect(await started.exited).toBe(0);
    expect(started.output()).toContain('shutting down');
  }, 60_000);

  it('SIGTERM to the npm process a user started stops the server and its embedded PostgreSQL', async () => {
    const started = await npmStart({ embedded: true });
    expect(alive(started.postgresPid!)).toBe(true);
    // `npm run migrate` while the server runs uses its PostgreSQL instead of failing on the lock.
    const migrate = await run('npm', ['run', '--silent', 'migrate'], { cwd: ROOT, env: started.env });
    expect(migrate.stdout).toContain('database is up to date');
    process.kill(started.npm.pid!, 'SIGTERM');
    expect(await gone(started.serverPid)).toBe(true);
    expect(await gone(started.postgresPid!)).toBe(true);
    await started.exited;
    expect(alive(started.npm.pid!)).toBe(false);
    expect(started.output()).toContain('shutting down');
  }, 60_000);

  it('SIGHUP to the npm process (npm does not pass it on, and dies of it) stops the server instead of orphaning it', async () => {
    const started = await npmStart({ embedded: true });
    process.kill(started.npm.pid!, 'SIGHUP');
    await started.exited;
    expect(await gone(started.serverPid), `the server runs on without npm:\n${started.output()}`).toBe(true);
    expect(await gone(started.postgresPid!)).toBe(true);
    expect(started.output()).toContain(`npm (pid ${started.npm.pid}) exited without stopping the server`);
    expect(started.output()).toContain(`send SIGHUP to pid ${started.serverPid} to reload keys`);
  }, 60_000);
});

