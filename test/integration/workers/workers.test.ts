import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';
import { RELAY_LOCK_KEY } from '../../../src/events/relay-lock.repository.js';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { loginForCode, newJar, redeemCode, type FlowTarget } from '../../helpers/code-flow.js';
import { createTestDatabase } from '../../helpers/database.js';
import { DEMO, formBody } from '../../helpers/demo.js';

// `custos serve` with WORKERS=2 as a real process tree (primary, two workers, the embedded
// PostgreSQL the primary starts), driven over fresh TLS connections: the primary hands each new
// connection to the next worker, and the access log line of each request (matched by the
// X-Request-Id we send) names the worker that served it.

const ROOT = path.resolve(import.meta.dirname, '../../..');
let work: string;
let keysDir: string;
let output = '';
let server: ReturnType<typeof spawn>;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let issuer: string;
let primaryPid: number;
let postgresUrl: string;
let password: string;
const agents: Agent[] = [];

type Auth = { basic?: [string, string]; client?: string; bearer?: string; origin?: string };

/** Log lines (JSON) of the whole tree. */
function lines(): Array<Record<string, any>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  for (;;) {
    const found = find();
    if (found !== undefined && found !== false) return found;
    if (server.exitCode !== null || server.signalCode !== null) throw new Error(`server exited while waiting for ${what}:\n${output}`);
    await sleep(50);
  }
}

/** A new agent: its first request opens a new connection, which the primary gives to the next worker. */
function freshAgent(client?: string): Agent {
  const ca = readFileSync(path.join(keysDir, 'ca.pem'), 'utf8');
  const certificate = client
    ? { cert: readFileSync(path.join(keysDir, 'clients', client, 'cert.pem'), 'utf8'), key: readFileSync(path.join(keysDir, 'clients', client, 'key.pem'), 'utf8') }
    : {};
  const agent = new Agent({ connect: { ca, ...certificate } });
  agents.push(agent);
  return agent;
}

/** One request on a connection of its own; resolves with the worker id that served it. */
async function call(method: 'GET' | 'POST' | 'DELETE', target: string, form?: Record<string, string>, auth: Auth = {}) {
  const id = randomUUID();
  const headers: Record<string, string> = { 'x-request-id': id };
  if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (auth.basic) headers.authorization = `Basic ${Buffer.from(auth.basic.join(':')).toString('base64')}`;
  if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  const agent = freshAgent(auth.client);
  const withClientId = auth.client && !auth.bearer ? { client_id: auth.client, ...form } : form;
  const response = await request(`${auth.origin ?? issuer}${target}`, { method: method as 'GET', headers, body: withClientId ? formBody(withClientId) : undefined, dispatcher: agent });
  const text = await response.body.text();
  await agent.close();
  const logged = await until(() => lines().find((line) => line.requestId === id && line.msg === 'request'), `the access log line of ${target}`);
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Prometheus text
  }
  return { status: response.statusCode, body, worker: logged.worker as number };
}

/** Repeats `attempt` on fresh connections until a worker other than `not` serves it (round-robin: the next one). */
async function onAnotherWorker<T extends { worker: number }>(not: number, attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; i < 10; i++) {
    const result = await attempt();
    if (result.worker !== not) return result;
  }
  throw new Error(`ten fresh connections all reached worker ${not}`);
}

const clientCredentials = () => call('POST', '/token', { grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
const introspect = (token: string, auth: Auth = { basic: DEMO.webBff }) => call('POST', '/token/introspection', { token }, auth);
const exchange = (subjectToken: string) =>
  call(
    'POST',
    '/token',
    {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'resume_orders',
      audience: DEMO.eventsResource,
      event_payload_hash: eventPayloadHash({ order: 1 }),
    },
    { client: 'orders-api' },
  );

/** The workers running now: id → pid, from their `worker listening` lines minus the ones the primary saw die. */
function liveWorkers(): Map<number, number> {
  const live = new Map<number, number>();
  for (const line of lines()) {
    if (line.msg === 'worker listening') live.set(line.worker, line.pid);
    if (line.role === 'primary' && typeof line.msg === 'string' && / died \(/.test(line.msg)) live.delete(line.worker);
  }
  return live;
}

/** A user's access token for the orders API, from the code flow (each step on a fresh connection). */
async function userAccessToken(): Promise<string> {
  const target: FlowTarget = {
    issuer,
    agent: () => freshAgent(),
    token: async (form, options = {}) => {
      const result = await call('POST', '/token', form as Record<string, string>, { basic: options.basic });
      return { status: result.status, body: result.body };
    },
  };
  const jar = newJar();
  const code = await loginForCode(target, jar, 'alice', password);
  const tokens = await redeemCode(target, code);
  expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
  return tokens.body.access_token;
}

/** Session-level advisory locks held on the relay key: the relays that publish. */
async function relayLocksHeld(): Promise<number> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const key = BigInt.asUintN(64, RELAY_LOCK_KEY);
    const { rows } = await client.query<{ held: string }>(
      `select count(*) as held from pg_locks
        where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())
          and classid = $1 and objid = $2 and objsubid = 1`,
      [Number(key >> 32n), Number(key & 0xffffffffn)],
    );
    return Number(rows[0]!.held);
  } finally {
    await client.end();
  }
}

/** Every process below `pid`, from /proc (zombies excluded). */
function descendants(pid: number): Array<{ pid: number; comm: string }> {
  const children = new Map<number, Array<{ pid: number; comm: string }>>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
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

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function startServer(): Promise<void> {
  work = await mkdtemp(path.join(tmpdir(), 'custos-workers-'));
  // initdb runs as an unprivileged postgres user when the tests run as root.
  await chmod(work, 0o755);
  await cp(path.join(ROOT, 'config'), path.join(work, 'config'), { recursive: true });
  keysDir = path.join(work, 'keys');
  const pgPort = await freePort();
  postgresUrl = `postgres://custos:custos@127.0.0.1:${pgPort}/custos`;
  server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? work,
      // Development: the primary starts the embedded PostgreSQL, creates the dev keys and the demo user.
      NODE_ENV: 'development',
      WORKERS: '2',
      PORT: '0',
      ADMIN_PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: path.join(work, 'data'),
      EMBEDDED_PG_PORT: String(pgPort),
      KEYS_DIR: keysDir,
      CONFIG_DIR: path.join(work, 'config'),
      EVENTS_SINK: 'log',
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (chunk) => (output += chunk));
  server.stderr!.on('data', (chunk) => (output += chunk));
  exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  const banner = await until(() => /Custos is running at (\S+) \(pid (\d+); stop it with: kill -TERM (\d+)\)/.exec(output) ?? undefined, 'the banner');
  issuer = banner[1]!;
  primaryPid = Number(banner[2]);
  password = /password: (\S+)/.exec(output)![1]!;
}

async function stopServer(): Promise<void> {
  if (server && server.exitCode === null && server.signalCode === null) {
    for (const { pid } of descendants(server.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    server.kill('SIGKILL');
  }
  await Promise.all(agents.map((agent) => agent.close().catch(() => {})));
  await rm(work, { recursive: true, force: true });
}

describe('WORKERS=2: one server, two worker processes (issue 21 #1)', { timeout: 60_000 }, () => {
  beforeAll(startServer, 120_000);
  afterAll(stopServer);

  it('the primary prints the banner and one `custos listening` with its own pid; each worker listens on the same port', async () => {
    expect(primaryPid).toBe(server.pid);
    // Log lines are written asynchronously: the banner may come first.
    await until(() => lines().find((line) => line.msg === 'custos listening'), '`custos listening`');
    const listening = lines().filter((line) => line.msg === 'custos listening');
    expect(listening).toEqual([expect.objectContaining({ pid: primaryPid, workers: 2, role: 'primary', issuer })]);
    const workers = lines().filter((line) => line.msg === 'worker listening');
    expect(workers.map((line) => line.worker).sort()).toEqual([1, 2]);
    expect(new Set(workers.map((line) => line.pid)).size).toBe(2);
    expect(workers.every((line) => line.port === listening[0]!.port && line.pid !== primaryPid)).toBe(true);
    // Migrations and the demo user happened once, in the primary.
    expect(output.match(/Demo user created/g)).toHaveLength(1);
    expect(lines().filter((line) => line.msg === 'migrations applied')).toEqual([expect.objectContaining({ role: 'primary' })]);
  });

  it('a token issued by one worker introspects at the other; a user token is exchanged at the other', async () => {
    const issued = await clientCredentials();
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    const introspected = await onAnotherWorker(issued.worker, () => introspect(issued.body.access_token, { basic: DEMO.reportingJob }));
    expect(introspected.body).toMatchObject({ active: true, client_id: 'reporting-job' });

    const subject = await userAccessToken();
    const holder = (await introspect(subject)).worker;
    const exchanged = await onAnotherWorker(holder, () => exchange(subject));
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    expect(exchanged.body.issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token');
    const resumed = await onAnotherWorker(exchanged.worker, () => introspect(exchanged.body.access_token, { client: 'orders-api' }));
    expect(resumed.body).toMatchObject({ active: true, scope: 'resume_orders' });
  });

  it('a revocation through one worker is seen by the other at once (introspection and exchange)', async () => {
    const subject = await userAccessToken();
    const revoked = await call('POST', '/token/revocation', { token: subject }, { basic: DEMO.webBff });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const seen = await onAnotherWorker(revoked.worker, () => introspect(subject));
    expect(seen.body).toEqual({ active: false });
    const refused = await onAnotherWorker(revoked.worker, () => exchange(subject));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_request');
  });

  it('the admin listener is shared too: a revocation by an administrator through one worker is seen by the other at once', async () => {
    const { adminPort } = lines().find((line) => line.msg === 'custos listening')!;
    const origin = `https://localhost:${adminPort}`;
    const token = await call('POST', '/token', { grant_type: 'client_credentials', scope: 'admin', resource: DEMO.adminResource }, { client: 'admin-cli' });
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const admin = { client: 'admin-cli', bearer: token.body.access_token as string, origin };
    const listed = await call('GET', '/admin/users', undefined, admin);
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    const alice = (listed.body.items as Array<{ id: string; username: string }>).find((user) => user.username === 'alice')!;
    expect((await onAnotherWorker(listed.worker, () => call('GET', `/admin/users/${alice.id}`, undefined, admin))).body.username).toBe('alice');

    const subject = await userAccessToken();
    const revoked = await call('DELETE', `/admin/users/${alice.id}/sessions`, undefined, admin);
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const seen = await onAnotherWorker(revoked.worker, () => introspect(subject));
    expect(seen.body).toEqual({ active: false });
  });

  it('/metrics answers for all workers at once: counters summed, connections per worker', async () => {
    const counted = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const before = await call('GET', '/metrics');
    const issued = [await clientCredentials(), await clientCredentials(), await clientCredentials()];
    expect(new Set(issued.map((result) => result.worker)).size).toBe(2);
    const after = await onAnotherWorker(before.worker, () => call('GET', '/metrics'));
    expect(after.status).toBe(200);
    const series = 'custos_tokens_issued_total{grant_type="client_credentials"}';
    expect(counted(after.body, series) - counted(before.body, series)).toBe(3);
    for (const worker of liveWorkers().keys()) expect(counted(after.body, `custos_worker_connections_total{worker="${worker}"}`)).toBeGreaterThan(0);
    expect(after.body).toContain('custos_workers_replaced_total 0');
  });

  it('exactly one relay publishes: one lock held, every event published once', async () => {
    expect(await relayLocksHeld()).toBe(1);
    const events = await until(() => {
      const found = lines().filter((line) => line.msg === 'iam event');
      return found.length > 0 ? found : undefined;
    }, 'the demo user’s events');
    const ids = events.map((line) => line.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(events.map((line) => line.worker)).size).toBe(1);
  });

  it('SIGHUP to the primary reloads the signing keys in every worker', async () => {
    const rotated = await rotateSigningKeys(keysDir);
    const reloadedBefore = lines().filter((line) => line.msg === 'signing keys reloaded').length;
    process.kill(primaryPid, 'SIGHUP');
    const reloaded = await until(() => {
      const found = lines().filter((line) => line.msg === 'signing keys reloaded').slice(reloadedBefore);
      return found.length >= 2 ? found : undefined;
    }, 'two reloads');
    expect(reloaded.map((line) => line.worker).sort()).toEqual([...liveWorkers().keys()].sort());
    expect(reloaded.every((line) => line.kid === rotated.current.kid)).toBe(true);
    const first = await clientCredentials();
    const second = await onAnotherWorker(first.worker, clientCredentials);
    for (const token of [first, second]) expect(decodeProtectedHeader(token.body.access_token).kid).toBe(rotated.current.kid);
  });

  it('a worker killed with SIGKILL is replaced (one log line), the relay moves if it held it, and service continues', async () => {
    const relay = lines().findLast((line) => line.msg === 'event relay active')!;
    const victim = relay.worker as number;
    const victimPid = liveWorkers().get(victim)!;
    const workersBefore = lines().filter((line) => line.msg === 'worker listening').length;
    process.kill(victimPid, 'SIGKILL');
    const died = await until(() => lines().find((line) => line.role === 'primary' && line.workerPid === victimPid), 'the death line');
    expect(died).toMatchObject({ level: 40, worker: victim, signal: 'SIGKILL' });
    expect(died.msg).toBe(`worker ${victim} (pid ${victimPid}) died (signal SIGKILL); starting a replacement`);
    const replacement = await until(() => lines().filter((line) => line.msg === 'worker listening')[workersBefore], 'the replacement');
    expect(replacement.worker).toBe(3);
    await until(() => lines().filter((line) => line.msg === 'event relay active').length === 2 || undefined, 'a relay taking over');
    expect(await relayLocksHeld()).toBe(1);
    const served = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const result = await clientCredentials();
      expect(result.status).toBe(200);
      served.add(result.worker);
    }
    expect([...served].sort()).toEqual([...liveWorkers().keys()].sort());
    const metrics = await call('GET', '/metrics');
    expect(metrics.body).toContain('custos_workers_replaced_total 1');
  });

  it('SIGTERM to the primary drains every worker and leaves no process behind (the embedded PostgreSQL included)', async () => {
    const postgresPid = Number((await readFile(path.join(work, 'data', 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const tree = descendants(primaryPid);
    expect(tree.map((process) => process.pid)).toEqual(expect.arrayContaining([...liveWorkers().values(), postgresPid]));

    // Two token requests on two new connections (so two workers), their bodies still arriving when the signal comes.
    const inFlight = [0, 1].map(() => {
      const id = randomUUID();
      const body = new PassThrough();
      body.on('error', () => {});
      const agent = freshAgent();
      const reply = request(`${issuer}/token`, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'x-request-id': id,
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`,
        },
        body,
      }).then(
        async (response) => ({ status: response.statusCode, text: await response.body.text() }),
        (error: Error) => ({ status: 0, text: error.message }),
      );
      body.write('grant_type=client_credentials');
      return { id, body, agent, reply };
    });
    await sleep(300);
    server.kill('SIGTERM');
    await sleep(200);
    for (const { body } of inFlight) body.end('&scope=orders%3Aread');
    for (const { reply, agent } of inFlight) {
      const { status, text } = await reply;
      expect(status, text).toBe(200);
      await agent.close();
    }
    expect(await exited).toEqual({ code: 0, signal: null });
    const servedBy = inFlight.map(({ id }) => lines().find((line) => line.requestId === id)?.worker);
    expect(new Set(servedBy).size, JSON.stringify(servedBy)).toBe(2);
    for (const process of tree) {
      while (alive(process.pid)) await sleep(50);
    }
    expect(tree.filter((process) => alive(process.pid))).toEqual([]);
    expect(output).toContain('"msg":"shutting down"');
  });
});

describe('WORKERS=2: failures stop the server with one clear message (issue 21 #1)', { timeout: 90_000 }, () => {
  /** `custos serve` with WORKERS=2 on a fresh test database; resolves with its output and exit. */
  async function serve(extraEnv: Record<string, string> = {}) {
    const database = await createTestDatabase();
    const dir = await mkdtemp(path.join(tmpdir(), 'custos-workers-failing-'));
    await cp(path.join(ROOT, 'config'), path.join(dir, 'config'), { recursive: true });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? dir,
        NODE_ENV: 'test',
        WORKERS: '2',
        PORT: '0',
        ADMIN_PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        KEYS_DIR: path.join(dir, 'keys'),
        CONFIG_DIR: path.join(dir, 'config'),
        SHUTDOWN_TIMEOUT_MS: '1000',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => {
      for (const { pid } of descendants(child.pid!)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      child.kill('SIGKILL');
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    });
    return { child, done, output: () => text };
  }
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  });

  it('workers dying again and again (5 within 30 s) stop the server: one message, exit code 1, no worker left', async () => {
    const server = await serve();
    while (!server.output().includes('Custos is running at')) {
      if (server.child.exitCode !== null) throw new Error(server.output());
      await sleep(50);
    }
    const killed = new Set<number>();
    while (server.child.exitCode === null) {
      for (const { pid, comm } of descendants(server.child.pid!)) {
        if (comm !== 'node' || killed.has(pid)) continue;
        killed.add(pid);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // died meanwhile
        }
      }
      await sleep(20);
    }
    expect(await server.done).toEqual({ code: 1, signal: null });
    expect(killed.size).toBeGreaterThanOrEqual(5);
    expect(server.output().match(/custos: workers died 5 times within 30 s \(the last: worker \d+, signal SIGKILL\); stopping the server/g)).toHaveLength(1);
    expect([...killed].filter(alive)).toEqual([]);
  });

  it('a worker that cannot start stops the server with its cause and exit code 1', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    cleanups.push(async () => void busy.close());
    const server = await serve({ PORT: String((busy.address() as AddressInfo).port) });
    expect(await server.done).toEqual({ code: 1, signal: null });
    expect(server.output()).toMatch(/custos: .*EADDRINUSE/);
    expect(server.output()).toMatch(/custos: worker \d+ \(pid \d+\) stopped during start-up \(exit code 1\); its error is above/);
    expect(server.output()).not.toContain('Custos is running at');
  });
});
