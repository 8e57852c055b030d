/**
 * `npm run bench`: Custos (production mode, separate process) side by side with bare
 * oidc-provider (separate process), driven by a load generator in a third process
 * (`bench/load.ts`), scenarios alternated over rounds. Prints a table and writes
 * `bench/results/<date>.json`. See README "Performance" for the scenarios and targets.
 *
 * Flags: --rounds N (3) --seconds S per scenario and round (6) --get-seconds S (3)
 *   --connections N (32) --tokens N for the memory scenario (100000) --floor-seconds S (2)
 *   --sessions N logins (sessions) for the memory scenario, RSS read at N/2 and N (10000; 0: skipped)
 *   --login-concurrency N (8)
 *   --port (18443) --bare-port (18444; bare oidc-provider with Custos's Node flags on the next port)
 *   --pg-port (54359) --profile (node --cpu-prof on Custos)
 *   --only 1,2,3 (scenario numbers) --no-write (do not write the results file)
 *   --workers N (1): Custos's WORKERS; server CPU and RSS are those of its whole process tree
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_OPTIONS } from './options.js';
import pg from 'pg';
import { Agent, request } from 'undici';
import { createDb } from '../src/db/create-db.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createPasswordHasher } from '../src/iam/password-hasher.js';
import { createUserService } from '../src/iam/user.service.js';
import { loadSigningKeys } from '../src/keys/signing-keys.js';
import { loadSetSigningKeys } from '../src/keys/set-signing-keys.js';
import { ensureDevPki } from '../src/pki/dev-pki.js';
import { eventPayloadHash } from '../src/verify/index.js';
import type { LoadJob, LoadResult } from './load.js';
import type { LoginJob, LoginResult } from './logins.js';
import type { FloorResult } from './verify.bench.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const WORK = path.join(ROOT, 'bench', '.work');
const ORDERS = 'https://api.custos.test/orders';
const EVENTS = 'https://events.custos.test/orders';
const REPORTING_JOB = 'Basic ' + Buffer.from('reporting-job:dev-reporting-job-secret-change-me').toString('base64');
const BARE_CLIENT = 'Basic ' + Buffer.from('bench-client:bench-client-secret').toString('base64');
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
/**
 * The Node flags Custos runs with (package.json `start`, the Containerfile's ENTRYPOINT;
 * test/unit/node-flags.test.ts keeps them together). Bare oidc-provider runs twice: as it ships
 * (Node's defaults, scenario 3) and with these flags (scenario 3f), so both comparisons are shown.
 */
const CUSTOS_NODE_FLAGS = ['--experimental-async-context-frame'];

const { values: flags } = parseArgs({ options: BENCH_OPTIONS });
const num = (name: keyof typeof flags) => {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number`);
  return value;
};
const ROUNDS = num('rounds');
const SECONDS = num('seconds');
const GET_SECONDS = num('get-seconds');
const CONNECTIONS = num('connections');
const TOKENS = num('tokens');
const SESSIONS = num('sessions');
const LOGIN_CONCURRENCY = num('login-concurrency');
const FLOOR_SECONDS = num('floor-seconds');
const PORT = num('port');
const BARE_PORT = num('bare-port');
const PG_PORT = num('pg-port');
const WORKERS = Math.max(1, Math.floor(num('workers')));
const ONLY = flags.only ? new Set(flags.only.split(',').map((s) => Number(s.trim()))) : undefined;
const wanted = (scenario: number) => ONLY === undefined || ONLY.has(scenario);

/** Summary of one scenario over all its rounds. */
interface Summary {
  scenario: string;
  server: 'custos' | 'bare' | 'bare-flags' | 'in-process';
  perSecond: number;
  requests: number;
  errors: number;
  failures: Record<string, number>;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  /** Server CPU time per request (user + system), microseconds: robust against other load on the machine. */
  cpuUsPerRequest?: number;
  /** The bench PostgreSQL's CPU time per request (postmaster and its backends), microseconds: it shares the cores. */
  dbCpuUsPerRequest?: number;
  /** The load generator's own CPU time per request, microseconds (warm-up included): it shares the cores too. */
  loadCpuUsPerRequest?: number;
  note?: string;
}

const children: ChildProcess[] = [];
let database: { url: string; stop(): Promise<void> } | undefined;
const loads = () => loadavg().map((value) => value.toFixed(2)).join(' ');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! / 1000;
}

type Measured = LoadResult & { serverCpuSeconds?: number; dbCpuSeconds?: number };

function summarize(scenario: string, server: Summary['server'], results: Measured[], note?: string): Summary {
  const latencies = results.flatMap((result) => result.latenciesUs).sort((a, b) => a - b);
  const requests = results.reduce((sum, result) => sum + result.requests, 0);
  const seconds = results.reduce((sum, result) => sum + result.seconds, 0);
  const failures: Record<string, number> = {};
  for (const result of results) for (const [key, count] of Object.entries(result.failures)) failures[key] = (failures[key] ?? 0) + count;
  return {
    scenario,
    server,
    perSecond: requests / seconds,
    requests,
    errors: results.reduce((sum, result) => sum + result.errors, 0),
    failures,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? latencies[latencies.length - 1]! / 1000 : undefined,
    cpuUsPerRequest: results.every((result) => result.serverCpuSeconds !== undefined)
      ? (results.reduce((sum, result) => sum + result.serverCpuSeconds!, 0) * 1e6) / requests
      : undefined,
    dbCpuUsPerRequest: results.every((result) => result.dbCpuSeconds !== undefined)
      ? (results.reduce((sum, result) => sum + result.dbCpuSeconds!, 0) * 1e6) / requests
      : undefined,
    loadCpuUsPerRequest: results.every((result) => result.cpuSeconds !== undefined)
      ? (results.reduce((sum, result) => sum + result.cpuSeconds, 0) * 1e6) / requests
      : undefined,
    note,
  };
}

/** Runs `script` with Node (the one running this script) and tsx; resolves with its stdout. */
function runNode(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`))));
  });
}

/**
 * A load run plus the server's CPU seconds spent meanwhile (warm-up included, a small overcount),
 * and with `db` the bench PostgreSQL's.
 */
async function load(job: LoadJob, serverPid?: number, db = false): Promise<Measured> {
  const before = serverPid ? cpuSeconds(serverPid) : undefined;
  const dbBefore = db ? dbCpuSeconds() : undefined;
  // The job goes through a file: many request bodies do not fit in one command-line argument.
  const jobFile = path.join(WORK, 'load-job.json');
  writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
  const result = JSON.parse(await runNode('bench/load.ts', [jobFile])) as LoadResult;
  return {
    ...result,
    ...(before === undefined ? {} : { serverCpuSeconds: cpuSeconds(serverPid!) - before }),
    ...(dbBefore === undefined ? {} : { dbCpuSeconds: dbCpuSeconds() - dbBefore }),
  };
}

async function waitUntilUp(origin: string, ca: string, child: ChildProcess, name: string): Promise<void> {
  const agent = new Agent({ connect: { ca, servername: 'localhost' } });
  const deadline = Date.now() + 60_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} during start-up (see bench/.work/${name}.log)`);
      try {
        const response = await request(`${origin}/.well-known/openid-configuration`, { dispatcher: agent });
        await response.body.dump();
        if (response.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${name} did not come up within 60 s`);
  } finally {
    await agent.close();
  }
}

function startServer(name: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const log = openSync(path.join(WORK, `${name}.log`), 'w');
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', log, log] });
  closeSync(log);
  children.push(child);
  return child;
}

/** Every process below `pid` (Custos's workers), from /proc. */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(text.slice(text.lastIndexOf(') ') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/**
 * User + system CPU seconds of a process and its live descendants (the workers of WORKERS > 1)
 * so far, plus the children it reaped (/proc/<pid>/stat, clock ticks of 1/100 s).
 */
function cpuSeconds(pid: number): number {
  const fields = (p: number) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const own = fields(pid);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const child of descendantsOf(pid)) {
    try {
      const f = fields(child);
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile (then counted in its parent's cutime/cstime)
    }
  }
  return ticks / 100;
}

/**
 * CPU seconds of the bench PostgreSQL so far: the postmaster (the `postgres` child of this
 * process, started by embedded-postgres), its live children (backends, WAL writer,
 * checkpointer...) and the children it has reaped (cutime/cstime).
 */
function dbCpuSeconds(): number {
  const stat = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = (text: string) => text.slice(text.lastIndexOf(') ') + 2).split(' ');
  const processes: Array<{ pid: number; comm: string; fields: string[] }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = stat(entry);
      processes.push({ pid: Number(entry), comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(') ')), fields: fields(text) });
    } catch {
      // exited meanwhile
    }
  }
  const postmaster = processes.find((p) => p.comm === 'postgres' && Number(p.fields[1]) === process.pid);
  if (!postmaster) throw new Error('bench PostgreSQL not found among this process\'s children');
  let ticks = Number(postmaster.fields[13]) + Number(postmaster.fields[14]);
  for (const p of processes) if (p.pid === postmaster.pid || Number(p.fields[1]) === postmaster.pid) ticks += Number(p.fields[11]) + Number(p.fields[12]);
  return ticks / 100;
}

/** Resident memory of a process and its descendants (with WORKERS > 1: the primary and every worker), MB. */
function rssMb(pid: number): number {
  let kb = 0;
  for (const p of [pid, ...descendantsOf(pid)]) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

/** A fresh database for this run on the bench's embedded PostgreSQL. */
async function freshDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(WORK, 'pg'), port: PG_PORT, database: 'postgres' });
  const admin = new pg.Client({ connectionString: embedded.connectionString });
  await admin.connect();
  await admin.query('drop database if exists custos_bench with (force)');
  await admin.query('create database custos_bench');
  await admin.end();
  return { url: embedded.connectionString.replace(/\/postgres$/, '/custos_bench'), stop: () => embedded.stop() };
}

/** `count` DPoP proofs (RFC 9449) for POST `htu`, one key, a fresh `jti` each, as `DPoP` headers. */
async function dpopProofs(htu: string, count: number): Promise<Record<string, string>[]> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  return Array.from({ length: count }, () => {
    const payload = Buffer.from(JSON.stringify({ htm: 'POST', htu, iat, jti: randomUUID() })).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return { dpop: `${header}.${payload}.${signature}` };
  });
}

/** The bench's login user, provisioned through the users service as an operator would. */
/** Registers a secret client through the CLI against the running instance's database; its Basic authorization header. */
function createRuntimeClient(databaseUrl: string): string {
  const metadata = {
    client_id: 'bench-runtime-client',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    scope: 'orders:read',
    resources: [ORDERS],
    default_resource: ORDERS,
  };
  const output = execFileSync(process.execPath, ['dist/src/cli/custos.js', 'clients', 'create', '--metadata', '-'], {
    cwd: ROOT,
    input: JSON.stringify(metadata),
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, CONFIG_DIR: path.join(ROOT, 'config') },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const created = JSON.parse(output.toString()) as { client_id: string; client_secret: string };
  return 'Basic ' + Buffer.from(`${created.client_id}:${created.client_secret}`).toString('base64');
}

async function createBenchUser(databaseUrl: string, username: string, password: string): Promise<void> {
  const db = createDb(databaseUrl, { max: 1 });
  try {
    await createUserService({ db, hasher: createPasswordHasher() }).create({ username, password }, { actor: 'bench', initiatingEntity: 'system' });
  } finally {
    await db.destroy();
  }
}

const fmt = (value: number | undefined, digits = 1) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const started = new Date();
  const loadBefore = loads();
  console.log(`bench: ${cpus().length} cores (${cpus()[0]?.model}), Node ${process.version}, load ${loadBefore}`);

  // Development key material, generated the way `npm start` does in development; Custos runs in
  // production mode and accepts it only because ALLOW_DEV_KEYS_IN_PRODUCTION=true is set below.
  const keysDir = path.join(ROOT, 'keys', 'dev');
  const pki = await ensureDevPki({ dir: keysDir, hostnames: ['localhost'], clients: ['orders-api', 'billing-worker', 'admin-cli'] });
  const signing = await loadSigningKeys(keysDir, { generate: true });
  await loadSetSigningKeys(keysDir, { generate: true });
  const bareKeyFile = path.join(WORK, 'bare-signing.jwk.json');
  writeFileSync(bareKeyFile, JSON.stringify(signing.current), { mode: 0o600 });
  database = await freshDatabase();

  const issuer = `https://localhost:${PORT}`;
  const origin = `https://127.0.0.1:${PORT}`;
  const bareOrigin = `https://127.0.0.1:${BARE_PORT}`;
  const profileDir = path.join(WORK, 'profiles');
  // Custos runs as it ships (the image runs the compiled dist/, not the TypeScript through tsx).
  console.log('bench: compiling Custos (npm run build)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const custos = startServer(
    'custos',
    // The workers inherit these flags: with several, each writes Node's default name (with its pid).
    [...(flags.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir, ...(WORKERS > 1 ? [] : ['--cpu-prof-name', 'custos.cpuprofile'])] : []), ...CUSTOS_NODE_FLAGS, 'dist/src/cli/custos.js', 'serve'],
    {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      ALLOW_DEV_KEYS_IN_PRODUCTION: 'true',
      WORKERS: String(WORKERS),
      HOST: '127.0.0.1',
      PORT: String(PORT),
      ADMIN_PORT: '0',
      ISSUER: issuer,
      DATABASE_URL: database.url,
      KEYS_DIR: 'keys/dev',
      CONFIG_DIR: path.join(ROOT, 'config'),
      TLS_CERT_FILE: pki.server.certPath,
      TLS_KEY_FILE: pki.server.keyPath,
      TLS_CLIENT_CA_FILE: pki.ca.certPath,
      COOKIE_KEYS: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'info',
    },
  );
  // Bare oidc-provider as it ships, and (for scenario 3f) with Custos's Node flags on the next port.
  const startBare = (name: string, port: number, nodeFlags: string[]) =>
    startServer(name, [...(flags.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`] : []), ...nodeFlags, '--import', 'tsx', 'bench/bare-provider.ts'], {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      BARE_PORT: String(port),
      BARE_TLS_CERT_FILE: pki.server.certPath,
      BARE_TLS_KEY_FILE: pki.server.keyPath,
      BARE_SIGNING_JWK_FILE: bareKeyFile,
      BARE_RESOURCE: ORDERS,
    });
  const bare = startBare('bare', BARE_PORT, []);
  const bareFlagsOrigin = `https://127.0.0.1:${BARE_PORT + 1}`;
  const bareFlags = wanted(3) ? startBare('bare-flags', BARE_PORT + 1, CUSTOS_NODE_FLAGS) : undefined;
  const ca = pki.caPem;
  await Promise.all([
    waitUntilUp(origin, ca, custos, 'custos'),
    waitUntilUp(bareOrigin, ca, bare, 'bare'),
    ...(bareFlags ? [waitUntilUp(bareFlagsOrigin, ca, bareFlags, 'bare-flags')] : []),
  ]);

  const billing = pki.clients['billing-worker']!;
  const ordersApi = pki.clients['orders-api']!;
  const base = { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 1 };

  // The login user (scenarios 5, 8 and the sessions of 9), provisioned as an operator would.
  let loginJob: LoginJob | undefined;
  if (wanted(5) || wanted(8) || (wanted(9) && SESSIONS > 0)) {
    const password = randomBytes(18).toString('base64url');
    // One account per browser (scenarios 8 and 9): the login throttle caps the password checks in
    // flight per account, and the scenarios measure logins, not that cap.
    const usernames = ['bench-user', ...Array.from({ length: LOGIN_CONCURRENCY - 1 }, (_, i) => `bench-user-${i + 2}`)];
    for (const username of usernames) await createBenchUser(database!.url, username, password);
    loginJob = {
      origin,
      ca,
      clientId: 'web-bff',
      clientSecret: 'dev-web-bff-secret-change-me',
      redirectUri: 'http://localhost:3000/callback',
      username: 'bench-user',
      usernames,
      password,
      concurrency: LOGIN_CONCURRENCY,
      seconds: SECONDS * 2,
    };
  }
  // Scenario 5's subject token: the user's access token for the orders API from a real login
  // (authorization code flow with PKCE through the web BFF client), fresh for each round (it
  // lives 5 minutes).
  const exchangeForm = (subjectToken: string): string =>
    new URLSearchParams({
      client_id: 'orders-api',
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'resume_orders',
      audience: EVENTS,
      event_payload_hash: eventPayloadHash({ type: 'order.placed', orderId: 'o-1001', amount: 4200 }),
    }).toString();
  const logIn = async (scope: string): Promise<LoginResult> => {
    const login = JSON.parse(await runNode('bench/logins.ts', [JSON.stringify({ ...loginJob!, concurrency: 1, maxLogins: 1, scope, keepAccessToken: true })])) as LoginResult;
    if (!login.accessToken) throw new Error(`scenario 5: the login for the user token failed (${JSON.stringify(login.failures)})`);
    return login;
  };
  const exchangeBody = async (): Promise<string> => exchangeForm((await logIn('openid orders orders:read')).accessToken!);
  // The same with a different user token for each exchange: more distinct tokens (one login, then
  // refresh-token rotation) than the exchange grant remembers verified, so every exchange verifies
  // its subject token's signature.
  const FRESH_SUBJECT_TOKENS = 1100;
  const freshExchangeBodies = async (): Promise<string[]> => {
    let refreshToken = (await logIn('openid offline_access orders orders:read')).refreshToken;
    if (!refreshToken) throw new Error('scenario 5 (new user token each): the login returned no refresh token');
    const agent = new Agent({ connect: { ca, servername: 'localhost' } });
    const webBff = 'Basic ' + Buffer.from(`${loginJob!.clientId}:${loginJob!.clientSecret}`).toString('base64');
    const bodies: string[] = [];
    try {
      while (bodies.length < FRESH_SUBJECT_TOKENS) {
        const response = await request(`${origin}/token`, {
          method: 'POST',
          dispatcher: agent,
          headers: { ...FORM, authorization: webBff },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
        });
        const answer = (await response.body.json()) as { access_token?: string; refresh_token?: string };
        if (response.statusCode !== 200 || !answer.access_token || !answer.refresh_token) {
          throw new Error(`scenario 5 (new user token each): the refresh answered ${response.statusCode}`);
        }
        refreshToken = answer.refresh_token;
        bodies.push(exchangeForm(answer.access_token));
      }
    } finally {
      await agent.close();
    }
    return bodies;
  };

  // Scenario 11: scenario 2 with a client registered while Custos runs (`custos clients create`,
  // as an operator would), not seeded from the file: the running instance learns of it by
  // NOTIFY and serves it from the same in-process cache (no database read per token).
  const runtimeClient = wanted(11) ? createRuntimeClient(database!.url) : undefined;
  const jobs: Record<string, { server: Summary['server']; job: LoadJob; scenario: number; prepare?: (job: LoadJob) => Promise<LoadJob> }> = {
    '1 client_credentials, tls_client_auth, bound': {
      scenario: 1,
      server: 'custos',
      job: { ...base, origin, method: 'POST', path: '/token', headers: FORM, body: 'client_id=billing-worker&grant_type=client_credentials&scope=orders%3Aread', tls: { ca, cert: billing.certPem, key: billing.keyPem } },
    },
    '2 client_credentials, client_secret_basic': {
      scenario: 2,
      server: 'custos',
      job: { ...base, origin, method: 'POST', path: '/token', headers: { ...FORM, authorization: REPORTING_JOB }, body: 'grant_type=client_credentials&scope=orders%3Aread', tls: { ca } },
    },
    ...(runtimeClient
      ? {
          '11 client_credentials, client_secret_basic, client made at run time': {
            scenario: 11,
            server: 'custos' as const,
            job: { ...base, origin, method: 'POST', path: '/token', headers: { ...FORM, authorization: runtimeClient }, body: 'grant_type=client_credentials&scope=orders%3Aread', tls: { ca } },
          },
        }
      : {}),
    '3 client_credentials, client_secret_basic (bare)': {
      scenario: 3,
      server: 'bare',
      job: { ...base, origin: bareOrigin, method: 'POST', path: '/token', headers: { ...FORM, authorization: BARE_CLIENT }, body: 'grant_type=client_credentials&scope=orders%3Aread', tls: { ca } },
    },
    "3f client_credentials, client_secret_basic (bare, Custos's Node flags)": {
      scenario: 3,
      server: 'bare-flags',
      job: { ...base, origin: bareFlagsOrigin, method: 'POST', path: '/token', headers: { ...FORM, authorization: BARE_CLIENT }, body: 'grant_type=client_credentials&scope=orders%3Aread', tls: { ca } },
    },
    '5 token exchange -> resume token, mTLS': {
      scenario: 5,
      server: 'custos',
      job: { ...base, origin, method: 'POST', path: '/token', headers: FORM, tls: { ca, cert: ordersApi.certPem, key: ordersApi.keyPem } },
      prepare: async (job) => ({ ...job, body: await exchangeBody() }),
    },
    '5 token exchange, a new user token each': {
      scenario: 5,
      server: 'custos',
      job: { ...base, origin, method: 'POST', path: '/token', headers: FORM, tls: { ca, cert: ordersApi.certPem, key: ordersApi.keyPem } },
      prepare: async (job) => ({ ...job, bodies: await freshExchangeBodies() }),
    },
    '10 client_credentials, client_secret_basic, DPoP-bound': {
      scenario: 10,
      server: 'custos',
      job: { ...base, origin, method: 'POST', path: '/token', headers: { ...FORM, authorization: REPORTING_JOB }, body: 'grant_type=client_credentials&scope=orders%3Aread', tls: { ca } },
      // One fresh proof per request (each jti is accepted once), made before the round so the
      // load generator does not sign while it measures; enough for the warm-up and the run.
      prepare: async (job) => ({ ...job, headerSets: await dpopProofs(`${issuer}/token`, Math.ceil((SECONDS + 2) * 6000)) }),
    },
    '7 GET /jwks': { scenario: 7, server: 'custos', job: { ...base, seconds: GET_SECONDS, origin, method: 'GET', path: '/jwks', tls: { ca } } },
    '7 GET /jwks (bare)': { scenario: 7, server: 'bare', job: { ...base, seconds: GET_SECONDS, origin: bareOrigin, method: 'GET', path: '/jwks', tls: { ca } } },
    '7 GET discovery': { scenario: 7, server: 'custos', job: { ...base, seconds: GET_SECONDS, origin, method: 'GET', path: '/.well-known/openid-configuration', tls: { ca } } },
    '7 GET discovery (bare)': { scenario: 7, server: 'bare', job: { ...base, seconds: GET_SECONDS, origin: bareOrigin, method: 'GET', path: '/.well-known/openid-configuration', tls: { ca } } },
  };
  const names = Object.keys(jobs).filter((name) => wanted(jobs[name]!.scenario));
  const rounds = new Map<string, Measured[]>(names.map((name) => [name, []]));
  const pidOf = (server: Summary['server']) => (server === 'custos' ? custos.pid : server === 'bare' ? bare.pid : server === 'bare-flags' ? bareFlags?.pid : undefined);
  const loadDuring: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so no scenario always runs first or right after another.
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const { job, prepare, server } = jobs[name]!;
      const result = await load(prepare ? await prepare(job) : job, pidOf(server), server === 'custos');
      rounds.get(name)!.push(result);
      process.stdout.write(`round ${round + 1}/${ROUNDS} ${name}: ${Math.round(result.requests / result.seconds)}/s, ${result.errors} errors\n`);
    }
    loadDuring.push(loads());
  }
  const summaries: Summary[] = names.map((name) => summarize(name, jobs[name]!.server, rounds.get(name)!));
  const byScenario = (prefix: string) => summaries.find((summary) => summary.scenario.startsWith(prefix));

  // Scenario 1 at half its peak rate (open loop): the p99 target.
  const s1 = byScenario('1 ');
  if (s1 && s1.perSecond > 0) {
    const rate = Math.round(s1.perSecond / 2);
    const half = await load({ ...jobs['1 client_credentials, tls_client_auth, bound']!.job, rate, seconds: SECONDS * 2 }, custos.pid, true);
    summaries.push(summarize(`1 at half peak (${rate}/s, open loop)`, 'custos', [half]));
  }

  // Scenario 4 and 6: one-core floors in their own process.
  let floors: FloorResult[] | undefined;
  if (wanted(4) || wanted(6)) {
    floors = JSON.parse(await runNode('bench/verify.bench.ts', ['--json'], { ...process.env, BENCH_SECONDS: String(FLOOR_SECONDS) })) as FloorResult[];
  }
  const rawVerify = floors?.find((f) => f.name.startsWith('(a)'));
  const rawSign = floors?.find((f) => f.name.startsWith('(s)'));
  if (floors) {
    for (const floor of floors) {
      summaries.push({ scenario: `${floor.name.startsWith('(s)') ? '4' : '6'} ${floor.name}`, server: 'in-process', perSecond: floor.ops / floor.seconds, requests: floor.ops, errors: 0, failures: {} });
    }
  }

  // Scenario 8: logins/s (argon2id at Custos's configured cost) while scenario 1 runs at a fixed rate.
  let scenario8 = 'not run';
  let logins: Summary | undefined;
  const halfPeak = summaries.find((summary) => summary.scenario.startsWith('1 at half peak'));
  if (wanted(8) && loginJob) {
    const rate = s1 ? Math.round(s1.perSecond / 2) : 200;
    // Both processes warm up (start, connect, the server's login paths get compiled) and then
    // measure the same window; the CPU readings cover that window.
    const startAt = Date.now() + 3000;
    let cpuBefore = 0;
    let dbBefore = 0;
    const window = setTimeout(() => {
      cpuBefore = cpuSeconds(custos.pid!);
      dbBefore = dbCpuSeconds();
    }, startAt - Date.now());
    const [during, signIns] = await Promise.all([
      load({ ...jobs['1 client_credentials, tls_client_auth, bound']!.job, rate, seconds: SECONDS * 2, startAt }),
      runNode('bench/logins.ts', [JSON.stringify({ ...loginJob, startAt })]).then((out) => JSON.parse(out) as LoginResult),
    ]);
    clearTimeout(window);
    const serverCpu = cpuSeconds(custos.pid!) - cpuBefore;
    const dbCpu = dbCpuSeconds() - dbBefore;
    logins = summarize(`8 logins, ${LOGIN_CONCURRENCY} browsers (auth + password + code + token)`, 'custos', [signIns]);
    // Server CPU per login: the run's CPU less scenario 1's share at its CPU per token (half peak).
    const s1Cpu = halfPeak?.cpuUsPerRequest ?? s1?.cpuUsPerRequest;
    if (s1Cpu !== undefined && logins.requests > 0) logins.cpuUsPerRequest = (serverCpu * 1e6 - during.requests * s1Cpu) / logins.requests;
    // PostgreSQL's CPU in the window, all counted against the logins (scenario 1 makes no queries).
    logins.dbCpuUsPerRequest = logins.requests > 0 ? (dbCpu * 1e6) / logins.requests : undefined;
    const meanwhile = summarize(`8 scenario 1 at ${rate}/s during the logins`, 'custos', [during]);
    summaries.push(logins, meanwhile);
    scenario8 =
      `${fmt(logins.perSecond)} logins/s (${logins.errors} failed), scenario 1 p99 meanwhile ${fmt(meanwhile.p99Ms)} ms; ` +
      `per login ${fmt((logins.cpuUsPerRequest ?? NaN) / 1000)} ms Custos CPU, ${fmt((logins.dbCpuUsPerRequest ?? NaN) / 1000)} ms PostgreSQL CPU`;
  }

  // Scenario 9: RSS of the Custos process while it issues tokens (mTLS client credentials), then
  // while it opens sessions (logins; sessions live in PostgreSQL, the process must stay flat).
  let memory: { baselineMb: number; after50kMb: number; after100kMb: number; growth: number; tokens: number } | undefined;
  if (wanted(9) && TOKENS > 0) {
    const job = { ...jobs['1 client_credentials, tls_client_auth, bound']!.job, seconds: 3600, warmupSeconds: 0 };
    const baselineMb = rssMb(custos.pid!);
    const first = await load({ ...job, maxRequests: TOKENS / 2 });
    const after50kMb = rssMb(custos.pid!);
    const second = await load({ ...job, maxRequests: TOKENS / 2 });
    const after100kMb = rssMb(custos.pid!);
    memory = { baselineMb, after50kMb, after100kMb, growth: after100kMb / after50kMb - 1, tokens: first.requests + second.requests - first.errors - second.errors };
  }
  let sessionMemory: { beforeMb: number; afterHalfMb: number; afterAllMb: number; growth: number; sessions: number; errors: number; seconds: number } | undefined;
  if (wanted(9) && SESSIONS > 0 && loginJob) {
    const job = { ...loginJob, seconds: 3600, maxLogins: Math.ceil(SESSIONS / 2) };
    const beforeMb = rssMb(custos.pid!);
    const first = JSON.parse(await runNode('bench/logins.ts', [JSON.stringify(job)])) as LoginResult;
    const afterHalfMb = rssMb(custos.pid!);
    const second = JSON.parse(await runNode('bench/logins.ts', [JSON.stringify({ ...job, maxLogins: SESSIONS - first.requests })])) as LoginResult;
    const afterAllMb = rssMb(custos.pid!);
    sessionMemory = {
      beforeMb,
      afterHalfMb,
      afterAllMb,
      growth: afterAllMb / afterHalfMb - 1,
      sessions: first.requests + second.requests,
      errors: first.errors + second.errors,
      seconds: first.seconds + second.seconds,
    };
  }
  const loadAfter = loads();

  // Ratios and targets (ratios within this run).
  const s2 = byScenario('2 ');
  const s3 = byScenario('3 ');
  const s3f = byScenario('3f ');
  const s5 = byScenario('5 ');
  const s10 = byScenario('10 ');
  const s11 = byScenario('11 ');
  const seq = floors?.find((f) => f.name.startsWith('(b)'));
  const rate = (f?: FloorResult) => (f ? f.ops / f.seconds : undefined);
  const ratios = {
    's1/s3': s1 && s3 ? s1.perSecond / s3.perSecond : undefined,
    's2/s3': s2 && s3 ? s2.perSecond / s3.perSecond : undefined,
    's1/es256_sign_floor': s1 && rawSign ? s1.perSecond / rate(rawSign)! : undefined,
    's5/s1': s5 && s1 ? s5.perSecond / s1.perSecond : undefined,
    'verify_sequential/raw_verify': seq && rawVerify ? rate(seq)! / rate(rawVerify)! : undefined,
    // The same comparisons by server CPU per request (bare's CPU per token / Custos's), less noisy.
    'cpu s1/s3': s1?.cpuUsPerRequest && s3?.cpuUsPerRequest ? s3.cpuUsPerRequest / s1.cpuUsPerRequest : undefined,
    'cpu s2/s3': s2?.cpuUsPerRequest && s3?.cpuUsPerRequest ? s3.cpuUsPerRequest / s2.cpuUsPerRequest : undefined,
    // Against bare oidc-provider run with Custos's Node flags: Custos's own cost on the same runtime.
    's1/s3f': s1 && s3f ? s1.perSecond / s3f.perSecond : undefined,
    's2/s3f': s2 && s3f ? s2.perSecond / s3f.perSecond : undefined,
    'cpu s1/s3f': s1?.cpuUsPerRequest && s3f?.cpuUsPerRequest ? s3f.cpuUsPerRequest / s1.cpuUsPerRequest : undefined,
    'cpu s2/s3f': s2?.cpuUsPerRequest && s3f?.cpuUsPerRequest ? s3f.cpuUsPerRequest / s2.cpuUsPerRequest : undefined,
    'cpu s5/s1': s5?.cpuUsPerRequest && s1?.cpuUsPerRequest ? s1.cpuUsPerRequest / s5.cpuUsPerRequest : undefined,
    // DPoP: the same client and authentication as scenario 2, plus one proof (an ES256 verification and a replay insert).
    's10/s2': s10 && s2 ? s10.perSecond / s2.perSecond : undefined,
    's10/s1': s10 && s1 ? s10.perSecond / s1.perSecond : undefined,
    'cpu s10/s2': s10?.cpuUsPerRequest && s2?.cpuUsPerRequest ? s2.cpuUsPerRequest / s10.cpuUsPerRequest : undefined,
    // A client made at run time against the seeded one (both from PostgreSQL, both cached).
    's11/s2': s11 && s2 ? s11.perSecond / s2.perSecond : undefined,
    'cpu s11/s2': s11?.cpuUsPerRequest && s2?.cpuUsPerRequest ? s2.cpuUsPerRequest / s11.cpuUsPerRequest : undefined,
  };
  const targets = [
    { target: 'scenario 1 >= 1.0 x scenario 3', value: ratios['s1/s3'], met: ratios['s1/s3'] !== undefined ? ratios['s1/s3'] >= 1 : undefined },
    { target: 'scenario 2 >= 1.0 x scenario 3', value: ratios['s2/s3'], met: ratios['s2/s3'] !== undefined ? ratios['s2/s3'] >= 1 : undefined },
    // Issue 21: server CPU per token at or below bare oidc-provider's (ratio: bare's CPU / Custos's).
    { target: 'scenario 1 CPU per token <= scenario 3', value: ratios['cpu s1/s3'], met: ratios['cpu s1/s3'] !== undefined ? ratios['cpu s1/s3'] >= 1 : undefined },
    { target: 'scenario 2 CPU per token <= scenario 3', value: ratios['cpu s2/s3'], met: ratios['cpu s2/s3'] !== undefined ? ratios['cpu s2/s3'] >= 1 : undefined },
    { target: 'scenario 1 CPU per token <= scenario 3f', value: ratios['cpu s1/s3f'], met: ratios['cpu s1/s3f'] !== undefined ? ratios['cpu s1/s3f'] >= 1 : undefined },
    { target: 'scenario 2 CPU per token <= scenario 3f', value: ratios['cpu s2/s3f'], met: ratios['cpu s2/s3f'] !== undefined ? ratios['cpu s2/s3f'] >= 1 : undefined },
    { target: 'scenario 1 p99 <= 25 ms at half peak', value: halfPeak?.p99Ms, met: halfPeak ? halfPeak.p99Ms! <= 25 : undefined },
    { target: 'scenario 5 >= 0.7 x scenario 1', value: ratios['s5/s1'], met: ratios['s5/s1'] !== undefined ? ratios['s5/s1'] >= 0.7 : undefined },
    { target: 'scenario 6 sequential >= 0.8 x raw verify', value: ratios['verify_sequential/raw_verify'], met: ratios['verify_sequential/raw_verify'] !== undefined ? ratios['verify_sequential/raw_verify'] >= 0.8 : undefined },
    {
      target: 'scenario 8 >= 30 logins/s, scenario 1 p99 <= 50 ms',
      value: logins?.perSecond,
      met: logins ? logins.perSecond >= 30 && (summaries.find((s) => s.scenario.startsWith('8 scenario 1'))?.p99Ms ?? Infinity) <= 50 : undefined,
      note: scenario8,
    },
    { target: 'scenario 9 RSS flat within 10% (50k -> 100k tokens)', value: memory?.growth, met: memory ? Math.abs(memory.growth) <= 0.1 : undefined },
    {
      target: `scenario 9 RSS flat within 10% (${Math.ceil(SESSIONS / 2)} -> ${SESSIONS} sessions)`,
      value: sessionMemory?.growth,
      met: sessionMemory ? Math.abs(sessionMemory.growth) <= 0.1 && sessionMemory.errors === 0 : undefined,
    },
  ];

  // Table.
  console.log(`\n${cpus().length} cores, ${cpus()[0]?.model}; Node ${process.version}; Custos WORKERS=${WORKERS}; ${CONNECTIONS} connections; ${ROUNDS} rounds x ${SECONDS}s; load avg before ${loadBefore}, after ${loadAfter}`);
  const width = Math.max('scenario'.length, ...summaries.map((s) => s.scenario.length));
  console.log(`${'scenario'.padEnd(width)} | server     |    req/s |  p50 ms |  p99 ms |  max ms | CPU µs/req | DB µs/req | gen µs/req | errors`);
  console.log(`${'-'.repeat(width)}-|------------|----------|---------|---------|---------|------------|-----------|------------|-------`);
  for (const s of summaries) {
    console.log(
      `${s.scenario.padEnd(width)} | ${s.server.padEnd(10)} | ${fmt(s.perSecond, 0).padStart(8)} | ${fmt(s.p50Ms).padStart(7)} | ${fmt(s.p99Ms).padStart(7)} | ${fmt(s.maxMs).padStart(7)} | ${fmt(s.cpuUsPerRequest, 0).padStart(10)} | ${fmt(s.dbCpuUsPerRequest, 0).padStart(9)} | ${fmt(s.loadCpuUsPerRequest, 0).padStart(10)} | ${s.errors}`,
    );
  }
  console.log(`8 logins/s: ${scenario8}`);
  if (memory) console.log(`9 RSS: baseline ${fmt(memory.baselineMb)} MB, after ${TOKENS / 2} tokens ${fmt(memory.after50kMb)} MB, after ${TOKENS} ${fmt(memory.after100kMb)} MB (${fmt(memory.growth * 100)}%)`);
  if (sessionMemory) {
    const m = sessionMemory;
    console.log(
      `9 RSS with sessions: before ${fmt(m.beforeMb)} MB, after ${Math.ceil(SESSIONS / 2)} logins ${fmt(m.afterHalfMb)} MB, after ${m.sessions} ${fmt(m.afterAllMb)} MB ` +
        `(${fmt(m.growth * 100)}%; ${m.errors} failed, ${fmt(m.sessions / m.seconds)} logins/s)`,
    );
  }
  console.log('\nratios:', Object.entries(ratios).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', '));
  for (const t of targets) console.log(`target ${t.met === undefined ? '?' : t.met ? 'met   ' : 'MISSED'} ${t.target}: ${t.note ?? fmt(t.value, 2)}`);

  if (!flags['no-write']) {
    const file = path.join(ROOT, 'bench', 'results', `${started.toISOString().slice(0, 10)}.json`);
    mkdirSync(path.dirname(file), { recursive: true });
    const result = {
      date: started.toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadBefore, loadDuringRounds: loadDuring, loadAfter },
      settings: { rounds: ROUNDS, seconds: SECONDS, getSeconds: GET_SECONDS, connections: CONNECTIONS, tokens: TOKENS, sessions: SESSIONS, loginConcurrency: LOGIN_CONCURRENCY, profile: flags.profile, workers: WORKERS },
      scenarios: summaries,
      scenario8,
      memory,
      sessionMemory,
      ratios,
      targets,
    };
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, file)}`);
  }
  await stopAll();
  if (flags.profile) {
    const custosProfiles = WORKERS > 1 ? 'CPU.*.cpuprofile (one per process of Custos)' : 'custos.cpuprofile';
    console.log(`CPU profiles: ${path.relative(ROOT, profileDir)}/{${custosProfiles}, bare.cpuprofile, bare-flags.cpuprofile} (summary: npx tsx bench/profile-summary.ts <file>)`);
  }
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      })),
  );
  await database?.stop();
  database = undefined;
}

try {
  await main();
} catch (error) {
  console.error(`bench: ${(error as Error).message}`);
  await stopAll();
  process.exitCode = 1;
}
