import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request, Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENT_SECRETS } from '../../../src/config/demo-secrets.js';
import { hashSecret } from '../../../src/iam/secret-hash.js';
import { startCustos } from '../../../src/main.js';
import { ensureDevPki } from '../../../src/pki/dev-pki.js';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

let work: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;

type ClientEntry = { client_id: string; client_secret_hash?: string };

/** Copies config/ to `dir` without the demo markers, as an operator adapting it would; `demoSecrets: false` also gives the secret clients new secrets. */
async function operatorConfig(dir: string, options: { demoSecrets: boolean; extraClients?: ClientEntry[] }): Promise<void> {
  await cp(path.join(ROOT, 'config'), dir, { recursive: true });
  for (const name of (await readdir(dir)).filter((file) => file.endsWith('.json'))) {
    const file = path.join(dir, name);
    const { demo: _marker, ...rest } = JSON.parse(await readFile(file, 'utf8'));
    if (name === 'clients.json') {
      const clients = rest.clients as ClientEntry[];
      if (!options.demoSecrets) {
        for (const client of clients) if (client.client_secret_hash) client.client_secret_hash = await hashSecret(`operator-secret-${client.client_id}-9f3kQ`);
      }
      clients.push(...(options.extraClients ?? []).map((extra) => ({ ...clients.find((client) => client.client_id === 'reporting-job')!, ...extra })));
    }
    await writeFile(file, JSON.stringify(rest));
  }
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-prod-'));
  database = await createTestDatabase();
  // TLS material provisioned by the operator (here: made with the PKI module, outside KEYS_DIR).
  const pki = await ensureDevPki({ dir: path.join(work, 'tls'), clients: ['orders-api'] });
  const configDir = path.join(work, 'config');
  await operatorConfig(configDir, { demoSecrets: false });
  env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    ADMIN_PORT: '0',
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
    // Only what `custos keys init` wrote: signing keys, SSF SET keys and cookie keys (unused here: COOKIE_KEYS is set).
    expect((await readdir(env.KEYS_DIR!)).sort()).toEqual(['cookie-keys.json', 'signing', 'ssf-signing']);
  });

  it('takes the cookie keys from the file `custos keys init` wrote when COOKIE_KEYS is not set', async () => {
    const { COOKIE_KEYS: _unset, ...withoutCookieKeys } = env;
    const custos = await startCustos({ env: withoutCookieKeys, cwd: ROOT });
    await custos.stop();
    expect(custos.config.env.COOKIE_KEYS).toBeUndefined();
  });

  it('never seeds demo data (users, roles) in production', async () => {
    const custos = await startCustos({ env, cwd: ROOT });
    try {
      expect(custos.config.seedDemoData).toBe(false);
      const users = await custos.db.selectFrom('iam_user').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      const roles = await custos.db.selectFrom('iam_user_role').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      expect([Number(users.n), Number(roles.n)]).toEqual([0, 0]);
    } finally {
      await custos.stop();
    }
  });
});

describe('production mode refuses to start without each item, saying how to provide it', () => {
  const without = (name: string) => {
    const { [name]: _removed, ...rest } = env;
    return rest;
  };
  const refusal = async (testEnv: Record<string, string>) => {
    const keysDir = path.join(work, `keys-${Math.random().toString(36).slice(2)}`);
    const error = await startCustos({ env: { ...testEnv, KEYS_DIR: testEnv.KEYS_DIR === undefined ? '' : keysDir }, cwd: ROOT }).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error, 'started although something was missing').toBeInstanceOf(Error);
    // Nothing was generated on the way to the refusal.
    await expect(readdir(keysDir)).rejects.toMatchObject({ code: 'ENOENT' });
    return error!.message;
  };

  it.each([
    ['KEYS_DIR', /environment variable KEYS_DIR: required in production — .*`custos keys init`/],
    ['ISSUER', /environment variable ISSUER: required in production — the public https URL/],
    ['TLS_CERT_FILE', /environment variable TLS_CERT_FILE: required in production — PEM server certificate .*`custos pki issue --usage server/],
    ['TLS_KEY_FILE', /environment variable TLS_KEY_FILE: required in production — PEM private key of TLS_CERT_FILE/],
    ['TLS_CLIENT_CA_FILE', /environment variable TLS_CLIENT_CA_FILE: required in production — PEM bundle of the CA\(s\) client certificates must chain to .*`custos pki init`/],
    ['DATABASE_URL', /environment variable DATABASE_URL: required in production — postgres:\/\/user:password@host:5432\/custos/],
    ['COOKIE_KEYS', /environment variable COOKIE_KEYS: required in production — .*cookie-keys\.json that `custos keys init` creates/],
  ])('without %s', async (name, message) => {
    const text = await refusal(without(name));
    expect(text).toMatch(message);
    // Exactly that item is named, nothing else.
    expect(text.split('\n').filter((line) => line.startsWith('  - '))).toHaveLength(1);
  });

  it('with an http issuer', async () => {
    expect(await refusal({ ...env, ISSUER: 'http://auth.example.com' })).toMatch(/environment variable ISSUER: an https URL/);
  });

  it('without signing keys (never generated)', async () => {
    expect(await refusal(env)).toMatch(/signing keys missing: .*current\.jwk\.json \(provide them or run `custos keys init`/);
  });

  it('with an unreadable TLS file', async () => {
    await expect(startCustos({ env: { ...env, TLS_KEY_FILE: path.join(work, 'missing.pem') }, cwd: ROOT })).rejects.toThrow(
      `environment variable TLS_KEY_FILE: cannot read ${path.join(work, 'missing.pem')} (ENOENT)`,
    );
  });

  it('with the demo configuration (demo clients and their well-known secrets), naming every demo file', async () => {
    const text = await refusal({ ...env, CONFIG_DIR: path.join(ROOT, 'config') });
    const files = (await readdir(path.join(ROOT, 'config'))).filter((name) => name.endsWith('.json')).sort();
    expect(files).toEqual(['clients.json', 'resource-servers.json', 'token-exchange.json']);
    for (const name of files) {
      // Every demo file carries the marker itself: removing it from one file is not enough.
      expect(JSON.parse(await readFile(path.join(ROOT, 'config', name), 'utf8')).demo, name).toBe(true);
      expect(text).toContain(`${path.join(ROOT, 'config', name)}: demo: true — the demo configuration (and its well-known client secrets) is refused in production`);
    }
  });

  it('with the demo markers removed but a published demo secret kept: one line per client, naming it (renamed too)', async () => {
    const configDir = path.join(work, 'config-demo-secrets');
    await operatorConfig(configDir, { demoSecrets: true, extraClients: [{ client_id: 'renamed-job' }] });
    const text = await refusal({ ...env, CONFIG_DIR: configDir });
    const lines = text.split('\n').filter((line) => line.startsWith('  - '));
    expect(lines).toHaveLength(3);
    for (const clientId of ['web-bff', 'reporting-job', 'renamed-job']) {
      expect(lines.filter((line) => line.includes(`client "${clientId}"`))).toEqual([
        expect.stringMatching(new RegExp(`^  - ${path.join(configDir, 'clients.json')}: clients\\.\\d+\\.client_secret_hash: the secret of client "${clientId}" is a demo secret published in the README — refused in production`)),
      ]);
    }
    // The secrets themselves are never printed.
    for (const secret of Object.values(DEMO_CLIENT_SECRETS)) expect(text).not.toContain(secret);
  });
});
