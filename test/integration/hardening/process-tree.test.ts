import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';
import { startTestApp } from '../../helpers/app.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

/** Whether `pid` runs (a zombie, exited but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every process below `pid` (children, their children, ...) with its command name, from /proc. */
function descendants(pid: number): Array<{ pid: number; comm: string }> {
  const children = new Map<number, Array<{ pid: number; comm: string }>>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), { pid: Number(entry), comm }]);
    } catch {
      // exited while listed
    }
  }
  const found: Array<{ pid: number; comm: string }> = [];
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      walk(child.pid);
    }
  };
  walk(pid);
  return found;
}

async function gone(pid: number, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  return !alive(pid);
}

function kill(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** A started process whose output is collected; `until` waits for a line of it. */
function started(child: ChildProcess) {
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  cleanups.push(() => kill(child.pid));
  return {
    child,
    exited,
    output: () => output,
    async until(pattern: RegExp, timeoutMs = 45_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
          throw new Error(`no ${pattern} (exit ${child.exitCode ?? child.signalCode}):\n${output}`);
        }
        await sleep(50);
      }
    },
  };
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-process-tree-'));
  // initdb runs as an unprivileged postgres user when the tests run as root.
  await chmod(work, 0o755);
  await cp(path.join(ROOT, 'config'), path.join(work, 'config'), { recursive: true });
  return () => rm(work, { recursive: true, force: true });
});

describe('no process outlives the one a user stops (issue 22 #4)', () => {
  it('a start after `kill -9` stops the embedded PostgreSQL the killed server left, and stops its own on exit', async () => {
    const dataDir = path.join(work, 'data-orphan');
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? work,
      NODE_ENV: 'test',
      PORT: '0',
      ADMIN_PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      KEYS_DIR: path.join(work, 'keys'),
      CONFIG_DIR: path.join(work, 'config'),
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '2000',
    };
    const postgresPid = async () => Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const serve = () => started(spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }));

    const first = serve();
    await first.until(/Custos is running at/);
    const leftBehind = await postgresPid();
    cleanups.push(() => kill(leftBehind, 'SIGQUIT'));
    first.child.kill('SIGKILL');
    await first.exited;
    await sleep(500);
    expect(alive(leftBehind), 'PostgreSQL outlives a server killed with SIGKILL').toBe(true);

    const second = serve();
    await second.until(/Custos is running at/);
    expect(alive(leftBehind), second.output()).toBe(false);
    expect(second.output()).toContain(`stopping the embedded PostgreSQL (pid ${leftBehind})`);
    const own = await postgresPid();
    cleanups.push(() => kill(own, 'SIGQUIT'));
    expect(own).not.toBe(leftBehind);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(await gone(own), 'the second server stops the PostgreSQL it started').toBe(true);
  }, 120_000);

  it('SIGTERM while the server starts stops it once it is up: exit code 0, no signal death, no PostgreSQL left', async () => {
    const dataDir = path.join(work, 'data-early-signal');
    const server = started(
      spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? work,
          NODE_ENV: 'test',
          PORT: '0',
          ADMIN_PORT: '0',
          HOST: '127.0.0.1',
          DATA_DIR: dataDir,
          EMBEDDED_PG_PORT: String(await freePort()),
          KEYS_DIR: path.join(work, 'keys-early-signal'),
          CONFIG_DIR: path.join(work, 'config'),
          LOG_LEVEL: 'info',
          SHUTDOWN_TIMEOUT_MS: '2000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    await server.until(/starting embedded PostgreSQL/);
    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('shutting down');
    expect(server.output()).not.toContain('Custos is running at');
    const postmaster = await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => undefined);
    if (postmaster) expect(await gone(Number(postmaster.split('\n')[0]))).toBe(true);
  }, 90_000);

  /** `npm run <script>` of an example, pointed at a fresh Custos, in its own process group; resolves when it says `ready`. */
  async function startExample(script: string, env: Record<string, string>, ready: RegExp) {
    const app = await startTestApp();
    cleanups.push(() => app.stop());
    const example = started(
      spawn('npm', ['run', script], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? work,
          CUSTOS_ISSUER: app.issuer,
          CUSTOS_CA_FILE: path.join(app.keysDir, 'ca.pem'),
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      }),
    );
    cleanups.push(() => kill(-example.child.pid!));
    await example.until(ready);
    return { app, example };
  }

  it('SIGTERM to `npm run example:bff` stops every process it started', async () => {
    const { example: bff } = await startExample('example:bff', { BFF_PORT: String(await freePort()) }, /Demo BFF on http/);
    const tree = descendants(bff.child.pid!);
    expect(tree.length).toBeGreaterThan(0);
    bff.child.kill('SIGTERM');
    await bff.exited;
    for (const process of tree) expect(await gone(process.pid), `${process.comm} (pid ${process.pid}) still runs`).toBe(true);
  }, 90_000);

  // docs/bff-developers.md: `npm run example:spa` serves the SPA demo (its flow in Chromium: test/integration/demo/spa.test.ts).
  it('`npm run example:spa` serves the page under its CSP, and SIGTERM stops every process it started', async () => {
    const port = await freePort();
    const { app, example: spa } = await startExample('example:spa', { SPA_PORT: String(port) }, /Demo SPA on http/);
    const page = await fetch(`http://localhost:${port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/app.js"></script>');
    const config = (await (await fetch(`http://localhost:${port}/config.json`)).json()) as Record<string, string>;
    expect(config).toMatchObject({ issuer: app.issuer, client_id: 'spa-demo', redirect_uri: `http://localhost:${port}/` });
    const tree = descendants(spa.child.pid!);
    spa.child.kill('SIGTERM');
    await spa.exited;
    for (const process of tree) expect(await gone(process.pid), `${process.comm} (pid ${process.pid}) still runs`).toBe(true);
  }, 90_000);

  describe('npm run pulsar:standalone', () => {
    /** A `java` that answers -version like Java 17 and otherwise sleeps (the broker's jar cache is not touched). */
    async function fakeJavaPath(): Promise<string> {
      const bin = path.join(work, 'fake-java-bin');
      await mkdir(bin, { recursive: true });
      await writeFile(
        path.join(bin, 'java'),
        '#!/bin/sh\nif [ "$1" = -version ]; then echo \'openjdk version "17.0.99"\' >&2; exit 0; fi\nexec sleep 600\n',
        { mode: 0o755 },
      );
      return `${bin}:${process.env.PATH ?? ''}`;
    }

    async function pulsarStandalone() {
      const broker = started(
        spawn('npm', ['run', 'pulsar:standalone'], {
          cwd: ROOT,
          env: {
            PATH: await fakeJavaPath(),
            HOME: process.env.HOME ?? work,
            PULSAR_DATA_DIR: path.join(work, `pulsar-${Date.now()}`),
            PULSAR_BROKER_PORT: String(await freePort()),
            PULSAR_WEB_PORT: String(await freePort()),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        }),
      );
      cleanups.push(() => kill(-broker.child.pid!));
      const deadline = Date.now() + 45_000;
      let java: { pid: number; comm: string } | undefined;
      while (!(java = descendants(broker.child.pid!).find((process) => process.comm === 'sleep'))) {
        if (broker.child.exitCode !== null || Date.now() > deadline) throw new Error(`no java started:\n${broker.output()}`);
        await sleep(100);
      }
      cleanups.push(() => kill(java.pid));
      return { broker, java, tree: descendants(broker.child.pid!) };
    }

    it('SIGTERM to the npm process a user started stops Java', async () => {
      const { broker, java, tree } = await pulsarStandalone();
      broker.child.kill('SIGTERM');
      await broker.exited;
      expect(await gone(java.pid), `java still runs: ${JSON.stringify(descendants(1).filter((p) => p.pid === java.pid))}`).toBe(true);
      for (const process of tree) expect(await gone(process.pid), `${process.comm} (pid ${process.pid}) still runs`).toBe(true);
    }, 90_000);

    it('Java stops when the process that started it is killed outright', async () => {
      const { java } = await pulsarStandalone();
      const parent = Number(readFileSync(`/proc/${java.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      process.kill(parent, 'SIGKILL');
      expect(await gone(java.pid)).toBe(true);
    }, 90_000);
  });
});
