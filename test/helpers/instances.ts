import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, buildConnector, request } from 'undici';
import { initCookieKeys } from '../../src/keys/cookie-keys.js';
import { loadSetSigningKeys } from '../../src/keys/set-signing-keys.js';
import { initSigningKeys } from '../../src/keys/signing-keys.js';
import { ensureDevPki, type DevPki } from '../../src/pki/dev-pki.js';
import { formBody } from './app.js';
import { createTestDatabase } from './database.js';
import { freePort } from '../../scripts/free-port.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The address clients use (a load balancer's): every instance has this issuer. */
export const CLUSTER_ISSUER = 'https://localhost';

/** One `custos serve` process of a cluster. */
export interface Instance {
  name: string;
  port: number;
  child: ChildProcess;
  output(): string;
  /** An undici agent that reaches this instance at the cluster address (like a load balancer picking it). */
  agent(client?: string): Agent;
  /** POST a form to `path` on this instance; `basic` = [id, secret], `client` = mTLS client with its dev certificate. */
  post(path: string, form: Record<string, string>, auth?: { basic?: [string, string]; client?: string }): Promise<{ status: number; body: any }>;
  get(path: string): Promise<{ status: number; body: any }>;
  /** A browser-like request (no redirects followed) carrying and updating `jar`'s cookies. */
  browse(jar: CookieJar, method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<{ status: number; location?: string; text: string }>;
  /** Sends SIGHUP and waits until the instance logs the reload. */
  reload(): Promise<void>;
  /** Sends `signal` (SIGTERM: graceful stop; SIGKILL: a crash) and waits until the process has exited. */
  kill(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/** Cookies of one browser (name → value); shared by requests to any instance, like a browser's. */
export type CookieJar = Map<string, string>;

function storeCookies(jar: CookieJar, header: string | string[] | undefined): void {
  for (const cookie of [header ?? []].flat()) {
    const [pair = '', ...attributes] = cookie.split(';');
    const name = pair.slice(0, pair.indexOf('=')).trim();
    const value = pair.slice(pair.indexOf('=') + 1).trim();
    const expired = attributes.some((attribute) => /^\s*(max-age=0|expires=thu, 01 jan 1970)/i.test(attribute));
    if (expired || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

export interface Cluster {
  instances: Instance[];
  keysDir: string;
  configDir: string;
  pki: DevPki;
  databaseUrl: string;
  /** Starts one more instance (named after the next letter) with the same settings and adds it to `instances`. */
  add(): Promise<Instance>;
  stop(): Promise<void>;
}

/**
 * Starts `count` Custos processes (the real CLI, in production mode) on one fresh database with
 * shared keys, cookie keys, TLS material and config, the way they run behind a load balancer
 * without sticky sessions. They start concurrently (migrations race like in a real roll-out).
 */
export async function startCluster(count: number, options: { env?: Record<string, string> } = {}): Promise<Cluster> {
  const database = await createTestDatabase();
  const work = await mkdtemp(path.join(tmpdir(), 'custos-cluster-'));
  const keysDir = path.join(work, 'keys');
  const configDir = path.join(work, 'config');
  await initSigningKeys(keysDir);
  await loadSetSigningKeys(keysDir, { generate: true });
  await initCookieKeys(keysDir);
  const pki = await ensureDevPki({ dir: path.join(work, 'tls'), clients: ['orders-api', 'billing-worker', 'admin-cli'] });
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  // The demo clients and their published secrets (the tests authenticate with them), which
  // production accepts only with ALLOW_DEV_KEYS_IN_PRODUCTION=true (as for the benchmarks).

  const children: ChildProcess[] = [];
  const agents: Agent[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
      }),
    );
    await Promise.all(agents.map((agent) => agent.close().catch(() => {})));
    await database.drop();
    await rm(work, { recursive: true, force: true });
  };

  try {
    const start = async (index: number): Promise<Instance> => {
      const name = String.fromCharCode(65 + index);
      const port = await freePort();
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? work,
          NODE_ENV: 'production',
          // One process per instance (production would default to one worker per core).
          WORKERS: '1',
          ALLOW_DEV_KEYS_IN_PRODUCTION: 'true',
          HOST: '127.0.0.1',
          PORT: String(port),
          ADMIN_PORT: '0',
          ISSUER: CLUSTER_ISSUER,
          DATABASE_URL: database.url,
          KEYS_DIR: keysDir,
          CONFIG_DIR: configDir,
          TLS_CERT_FILE: pki.server.certPath,
          TLS_KEY_FILE: pki.server.keyPath,
          TLS_CLIENT_CA_FILE: pki.ca.certPath,
          LOG_LEVEL: 'info',
          SHUTDOWN_TIMEOUT_MS: '1000',
          ...options.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let output = '';
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      const deadline = Date.now() + 30_000;
      while (!output.includes('Custos is running at')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`instance ${name} did not start:\n${output}`);
        await sleep(50);
      }
      const agentFor = (client?: string) => {
        const cert = client ? pki.clients[client] : undefined;
        if (client && !cert) throw new Error(`no dev certificate for ${client}`);
        const connector = buildConnector({ ca: pki.caPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) });
        // The URL names the cluster address; the connection goes to this instance's port.
        const agent = new Agent({ connect: (opts, callback) => connector({ ...opts, port: String(port) }, callback) });
        agents.push(agent);
        return agent;
      };
      const plain = agentFor();
      const clientAgents = new Map<string, Agent>();
      const parse = async (response: Awaited<ReturnType<typeof request>>) => {
        const text = await response.body.text();
        return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
      };
      return {
        name,
        port,
        child,
        output: () => output,
        agent: (client) => (client ? agentFor(client) : plain),
        async post(target, form, auth = {}) {
          const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
          if (auth.basic) headers.authorization = `Basic ${Buffer.from(auth.basic.map(encodeURIComponent).join(':')).toString('base64')}`;
          let dispatcher = plain;
          if (auth.client) {
            if (!clientAgents.has(auth.client)) clientAgents.set(auth.client, agentFor(auth.client));
            dispatcher = clientAgents.get(auth.client)!;
          }
          const body = formBody(auth.client ? { client_id: auth.client, ...form } : form);
          return parse(await request(`${CLUSTER_ISSUER}${target}`, { method: 'POST', headers, body, dispatcher }));
        },
        async get(target) {
          return parse(await request(`${CLUSTER_ISSUER}${target}`, { dispatcher: plain }));
        },
        async browse(jar, method, target, form) {
          const url = new URL(target, CLUSTER_ISSUER);
          const headers: Record<string, string> = { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') };
          if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
          const response = await request(url, { method, headers, body: form ? formBody(form) : undefined, dispatcher: plain });
          storeCookies(jar, response.headers['set-cookie']);
          const location = response.headers.location;
          return { status: response.statusCode, location: typeof location === 'string' ? location : undefined, text: await response.body.text() };
        },
        async reload() {
          const before = output.split('signing keys reloaded').length;
          child.kill('SIGHUP');
          const until = Date.now() + 10_000;
          while (output.split('signing keys reloaded').length === before) {
            if (child.exitCode !== null || Date.now() > until) throw new Error(`instance ${name} did not reload:\n${output}`);
            await sleep(25);
          }
        },
        async kill(signal) {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill(signal);
          await exited;
        },
      };
    };
    const instances = await Promise.all(Array.from({ length: count }, (_, index) => start(index)));
    const add = async () => {
      const instance = await start(children.length);
      instances.push(instance);
      return instance;
    };
    return { instances, keysDir, configDir, pki, databaseUrl: database.url, add, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
