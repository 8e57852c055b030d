import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { startCustos, type RunningCustos } from '../../src/main.js';
import { createTestDatabase } from './database.js';
import { DEMO, formBody } from './demo.js';

export { DEMO, formBody };

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A Custos instance on port 0 over real TLS against a fresh database, plus real HTTP clients. */
export interface TestApp {
  custos: RunningCustos;
  issuer: string;
  keysDir: string;
  configDir: string;
  databaseUrl: string;
  logs: string[];
  /** undici agent trusting the dev CA, optionally presenting a client certificate. */
  agent(client?: { certPem: string; keyPem: string }): Agent;
  /** Agent presenting the dev certificate of a demo client (orders-api, billing-worker, admin-cli). */
  clientAgent(name: string): Agent;
  /** POST a form to the token endpoint; returns status and parsed JSON. */
  token(form: Record<string, string | string[]>, options?: { agent?: Agent; basic?: [string, string] }): Promise<{ status: number; body: any }>;
  restart(extraEnv?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  /** Copy of config/ the test may edit before start (defaults to the demo config). */
  configDir?: string;
  keysDir?: string;
}


/** Starts Custos for a test file: own database, own keys dir, own config copy. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const keysDir = options.keysDir ?? (await mkdtemp(path.join(tmpdir(), 'custos-keys-')));
  const configDir = options.configDir ?? (await mkdtemp(path.join(tmpdir(), 'custos-config-')));
  if (!options.configDir) await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, callback) {
      logs.push(String(chunk));
      callback();
    },
  });
  const agents: Agent[] = [];
  const baseEnv = {
    NODE_ENV: 'test',
    PORT: '0',
    ADMIN_PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    KEYS_DIR: keysDir,
    CONFIG_DIR: configDir,
    LOG_LEVEL: 'info',
    // One process (startCustos never forks; the explicit value documents the tests' default).
    WORKERS: '1',
  };
  let custos = await startCustos({ env: { ...baseEnv, ...options.env }, cwd: ROOT, logDestination: destination });
  const app: TestApp = {
    get custos() {
      return custos;
    },
    get issuer() {
      return custos.issuer;
    },
    keysDir,
    configDir,
    databaseUrl: database.url,
    logs,
    agent(client) {
      const agent = new Agent({
        connect: { ca: custos.tls.clientCaPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) },
      });
      agents.push(agent);
      return agent;
    },
    clientAgent(name) {
      const cert = custos.devPki?.clients[name];
      if (!cert) throw new Error(`no dev certificate for ${name}`);
      return app.agent({ certPem: cert.certPem, keyPem: cert.keyPem });
    },
    async token(form, opts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(opts.basic[0])}:${encodeURIComponent(opts.basic[1])}`).toString('base64')}`;
      const response = await request(`${custos.issuer}/token`, {
        method: 'POST',
        body: formBody(form),
        headers,
        dispatcher: opts.agent ?? app.agent(),
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
    },
    async restart(extraEnv = {}) {
      const port = String(custos.port);
      await custos.stop();
      custos = await startCustos({ env: { ...baseEnv, ...options.env, PORT: port, ...extraEnv }, cwd: ROOT, logDestination: destination });
    },
    async stop() {
      await Promise.all(agents.map((agent) => agent.close().catch(() => {})));
      await custos.stop();
      await database.drop();
      if (!options.keysDir) await rm(keysDir, { recursive: true, force: true });
      if (!options.configDir) await rm(configDir, { recursive: true, force: true });
    },
  };
  return app;
}


/** A valid authorization request of the demo web-bff client (PKCE S256 of RFC 7636's example verifier), as query parameters. */
export const WEB_BFF_AUTHORIZATION = new URLSearchParams({
  client_id: 'web-bff',
  response_type: 'code',
  scope: 'openid',
  redirect_uri: 'http://localhost:3000/callback',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
}).toString();
