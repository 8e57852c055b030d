import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request, Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCustos } from '../../../src/main.js';
import { ensureDevPki } from '../../../src/pki/dev-pki.js';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

let work: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-prod-'));
  database = await createTestDatabase();
  // TLS material provisioned by the operator (here: made with the PKI module, outside KEYS_DIR).
  const pki = await ensureDevPki({ dir: path.join(work, 'tls'), clients: ['orders-api'] });
  const configDir = path.join(work, 'config');
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  const file = path.join(configDir, 'resource-servers.json');
  const servers = JSON.parse(await readFile(file, 'utf8'));
  servers.demo = false;
  await writeFile(file, JSON.stringify(servers));
  env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    ISSUER: 'https://localhost:1',
    DATABASE_URL: database.url,
    KEYS_DIR: path.join(work, 'keys'),
    CONFIG_DIR: configDir,
    TLS_CERT_FILE: pki.server.certPath,
    TLS_KEY_FILE: pki.server.keyPath,
    TLS_CLIENT_CA_FILE: pki.ca.certPath,
    COOKIE_KEYS: 'k'.repeat(40),
    LOG_LEVEL: 'silent',
  };
});

afterAll(async () => {
  await database?.drop();
  await rm(work, { recursive: true, force: true });
});

describe('production mode', () => {
  it('refuses to start without signing keys and generates nothing', async () => {
    await expect(startCustos({ env, cwd: ROOT })).rejects.toThrow(/signing keys missing: .*current\.jwk\.json/);
    await expect(readdir(env.KEYS_DIR!)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('starts once an operator has created the keys with `custos keys init`', async () => {
    const { stdout } = await run('npx', ['tsx', 'src/cli/custos.ts', 'keys', 'init'], { cwd: ROOT, env: { ...process.env, ...env } });
    expect(stdout).toMatch(/created current \S+ and next \S+/);
    const custos = await startCustos({ env, cwd: ROOT });
    try {
      expect(custos.devPki).toBeUndefined();
      const agent = new Agent({ connect: { ca: custos.tls.clientCaPem } });
      const response = await request(`https://localhost:${custos.port}/jwks`, { dispatcher: agent });
      const jwks = (await response.body.json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((key) => key.kid)).toEqual([custos.keys().current.kid, custos.keys().next.kid]);
      await agent.close();
    } finally {
      await custos.stop();
    }
    // The cookie keys came from COOKIE_KEYS: nothing but the signing keys was written.
    expect((await readdir(env.KEYS_DIR!)).sort()).toEqual(['signing']);
  });
});
