import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/config-error.js';
import { loadConfig } from '../../../src/config/load-config.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const DEMO_CONFIG = path.join(ROOT, 'config');
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$ngXTuqlyKFpv5u9ao2QQmw$9puTsKQaRos3KKaXLMwz4bM1momfF6RyrKnH3mNKOFs';
const ORDERS = 'https://api.custos.test/orders';

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function configDir(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'custos-config-test-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

/** Runs loadConfig and returns the ConfigError it throws (fails the test if it does not throw one). */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  let thrown: unknown;
  try {
    loadConfig(env, ROOT);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

/** Production settings every production case shares (some still missing). */
const PRODUCTION_BASE = {
  NODE_ENV: 'production',
  CONFIG_DIR: DEMO_CONFIG,
  KEYS_DIR: '/etc/custos/keys',
  ISSUER: 'https://auth.example.com',
  DATABASE_URL: 'postgres://custos@db/custos',
};

const resourceServers = { resource_servers: [{ identifier: ORDERS, scopes: ['orders:read'] }] };
const goodClient = {
  client_id: 'svc',
  client_secret_hash: HASH,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['client_credentials'],
  resources: [ORDERS],
};

describe('loadConfig: environment variables', () => {
  it('accepts the demo configuration in development (baseline for the failures below)', () => {
    const config = loadConfig({ CONFIG_DIR: DEMO_CONFIG, PORT: '8443' }, ROOT);
    expect(config.production).toBe(false);
    expect(config.env.PORT).toBe(8443);
    expect(config.files.demo).toBe(true);
    expect(config.seedDemoData).toBe(true);
    expect(config.files.clients.map((client) => client.client_id)).toContain('reporting-job');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['ISSUER', 'http://x'],
    ['ISSUER', 'not a url'],
    ['NODE_ENV', 'staging'],
    ['BODY_LIMIT_BYTES', '10'],
    ['DATABASE_POOL_MAX', '0'],
    ['COOKIE_KEYS', 'short'],
  ])('%s=%s stops loading with a ConfigError naming the variable', (name, value) => {
    const error = configError({ CONFIG_DIR: DEMO_CONFIG, [name]: value });
    expect(error.message).toContain(`environment variable ${name}`);
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(new RegExp(`^environment variable ${name}: `));
  });

  it('reports every bad variable at once', () => {
    const error = configError({ PORT: 'abc', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', ISSUER: 'http://x' });
    for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'ISSUER']) expect(error.message).toContain(`environment variable ${name}`);
    expect(error.problems).toHaveLength(4);
  });

  it('does not echo the offending value (it may be a secret)', () => {
    const error = configError({ DATABASE_URL: 'mysql://admin:hunter2-secret@db.internal/custos' });
    expect(error.message).toContain('DATABASE_URL');
    expect(error.message).not.toContain('hunter2-secret');
    const cookie = configError({ COOKIE_KEYS: 'tooshort-cookie-secret' });
    expect(cookie.message).not.toContain('tooshort-cookie-secret');
  });

  it('production without keys, issuer, cookie keys, TLS files or DATABASE_URL names each of them', () => {
    const error = configError({ NODE_ENV: 'production', CONFIG_DIR: DEMO_CONFIG });
    for (const name of ['KEYS_DIR', 'ISSUER', 'COOKIE_KEYS', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CLIENT_CA_FILE', 'DATABASE_URL']) {
      expect(error.message).toContain(name);
    }
  });

  it('production with only some settings names just the missing ones', () => {
    const error = configError({
      ...PRODUCTION_BASE,
    });
    expect(error.message).toContain('COOKIE_KEYS');
    expect(error.message).toContain('TLS_CERT_FILE');
    expect(error.message).not.toContain('KEYS_DIR');
    expect(error.message).not.toContain('environment variable ISSUER');
    expect(error.message).not.toContain('DATABASE_URL');
  });

  it('a missing CONFIG_DIR is named', () => {
    const error = configError({ CONFIG_DIR: path.join(tmpdir(), 'custos-no-such-config-dir') });
    expect(error.message).toContain('CONFIG_DIR');
  });
});

describe('loadConfig: config files', () => {
  it('loads a valid minimal config directory', async () => {
    const dir = await configDir({ 'resource-servers.json': resourceServers, 'clients.json': { clients: [goodClient] } });
    const config = loadConfig({ CONFIG_DIR: dir }, ROOT);
    expect(config.files.clients).toHaveLength(1);
    expect(config.files.demo).toBe(false);
    expect(config.seedDemoData).toBe(false);
    expect(config.sources.clients).toBe(path.join(dir, 'clients.json'));
  });

  it('client_secret_basic without client_secret_hash names the file and the field path', async () => {
    const { client_secret_hash: _omitted, ...client } = goodClient;
    const dir = await configDir({ 'resource-servers.json': resourceServers, 'clients.json': { clients: [goodClient, client] } });
    const error = configError({ CONFIG_DIR: dir });
    expect(error.message).toContain(`${path.join(dir, 'clients.json')}: clients.1.client_secret_hash`);
    expect(error.message).toContain('client_secret_basic');
  });

  it('an unknown resource names the file, the field path and the resource', async () => {
    const dir = await configDir({
      'resource-servers.json': resourceServers,
      'clients.json': { clients: [{ ...goodClient, resources: [ORDERS, 'https://nowhere.example/api'] }] },
    });
    const error = configError({ CONFIG_DIR: dir });
    expect(error.message).toContain(`${path.join(dir, 'clients.json')}: clients.0.resources.1`);
    expect(error.message).toContain('https://nowhere.example/api');
  });

  it('a client secret in clear text (not an argon2id hash) and unknown fields are named', async () => {
    const dir = await configDir({
      'resource-servers.json': resourceServers,
      'clients.json': { clients: [{ ...goodClient, client_secret_hash: 'plain-text-secret-value', client_secret: 'oops' }] },
    });
    const error = configError({ CONFIG_DIR: dir });
    expect(error.message).toContain('clients.json: clients.0.client_secret_hash');
    expect(error.message).toMatch(/clients\.json: clients\.0.*client_secret\b/);
    expect(error.message).not.toContain('plain-text-secret-value');
  });

  it('invalid JSON names the file', async () => {
    const dir = await configDir({ 'resource-servers.json': resourceServers, 'clients.json': '{ "clients": [ { "client_id": "svc", } ] ' });
    const error = configError({ CONFIG_DIR: dir });
    expect(error.message).toContain(path.join(dir, 'clients.json'));
    expect(error.message).toContain('not valid JSON');
    expect(error.message).not.toContain('resource-servers.json');
  });

  it('a key defined in two files names both files', async () => {
    const dir = await configDir({ 'a.json': resourceServers, 'b.json': resourceServers });
    const error = configError({ CONFIG_DIR: dir });
    expect(error.message).toContain(path.join(dir, 'b.json'));
    expect(error.message).toContain(path.join(dir, 'a.json'));
    expect(error.message).toContain('resource_servers');
  });

  it('the demo configuration is refused in production, naming the file with demo: true', () => {
    const error = configError({
      ...PRODUCTION_BASE,
      COOKIE_KEYS: 'a'.repeat(32),
      TLS_CERT_FILE: '/etc/custos/tls/cert.pem',
      TLS_KEY_FILE: '/etc/custos/tls/key.pem',
      TLS_CLIENT_CA_FILE: '/etc/custos/tls/ca.pem',
    });
    expect(error.message).toContain('demo');
    expect(error.message).toContain('production');
    expect(error.message).toContain(path.join(DEMO_CONFIG, 'resource-servers.json'));
  });

  it('production refuses KEYS_DIR=keys/dev and the demo configuration unless ALLOW_DEV_KEYS_IN_PRODUCTION=true (benchmarks)', () => {
    const complete = {
      ...PRODUCTION_BASE,
      COOKIE_KEYS: 'a'.repeat(32),
      TLS_CERT_FILE: '/etc/custos/tls/cert.pem',
      TLS_KEY_FILE: '/etc/custos/tls/key.pem',
      TLS_CLIENT_CA_FILE: '/etc/custos/tls/ca.pem',
      KEYS_DIR: 'keys/dev',
    };
    expect(configError(complete).message).toMatch(/KEYS_DIR: keys\/dev holds development keys/);
    expect(configError({ ...complete, ALLOW_DEV_KEYS_IN_PRODUCTION: 'false' }).message).toMatch(/KEYS_DIR/);
    expect(configError({ ...complete, ALLOW_DEV_KEYS_IN_PRODUCTION: 'yes' }).message).toContain('ALLOW_DEV_KEYS_IN_PRODUCTION');
    const allowed = loadConfig({ ...complete, ALLOW_DEV_KEYS_IN_PRODUCTION: 'true' }, ROOT);
    expect(allowed.production).toBe(true);
    expect(allowed.files.demo).toBe(true);
    expect(allowed.keysDir).toBe(path.join(ROOT, 'keys/dev'));
  });
});

describe('custos CLI start-up with a bad configuration', () => {
  function runCli(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      // A clean environment: nothing from the test process (no DATABASE_URL, no NODE_ENV) leaks in.
      const child = spawn('npx', ['tsx', 'src/cli/custos.ts', 'serve'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  // Should the config check ever regress, the process must not touch real state: everything points at throwaway paths.
  const sandbox = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'custos-cli-'));
    tempDirs.push(dir);
    return { DATA_DIR: path.join(dir, 'data'), KEYS_DIR: path.join(dir, 'keys'), DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };
  };

  it('PORT=abc: exits with code 1 and a message naming PORT, without a stack trace', async () => {
    const { code, stdout, stderr } = await runCli({ ...(await sandbox()), PORT: 'abc' });
    expect(stderr).toContain('environment variable PORT');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).not.toContain('Custos is running');
    // A supervisor (systemd Restart=on-failure, Kubernetes) must see the failure.
    expect(code, 'exit code of a start-up that failed on configuration').toBe(1);
  });

  it('an invalid config file: exits with code 1 and names the file', async () => {
    const dir = await configDir({ 'clients.json': '{ not json' });
    const { code, stderr } = await runCli({ ...(await sandbox()), CONFIG_DIR: dir });
    expect(stderr).toContain(path.join(dir, 'clients.json'));
    expect(code, 'exit code of a start-up that failed on configuration').toBe(1);
  });
});

describe('loadConfig: address lists (TRUST_PROXY, METRICS_ALLOW)', () => {
  it.each(['10.9.9.9/', '10.0.0.0/0', '::/0', '10.0.0.0/33', 'proxy.example', '10.0.0.1/abc', '/8'])(
    'refuses TRUST_PROXY=%s, naming the variable',
    (value) => {
      expect(configError({ CONFIG_DIR: DEMO_CONFIG, TRUST_PROXY: value }).message).toMatch(/TRUST_PROXY: .*not an IP address or a CIDR range/);
    },
  );

  it('parses addresses and ranges, and defaults METRICS_ALLOW to loopback', () => {
    const config = loadConfig({ CONFIG_DIR: DEMO_CONFIG, TRUST_PROXY: '10.0.0.0/8, 192.0.2.7,fd00::/8' }, ROOT);
    expect(config.env.TRUST_PROXY).toEqual([
      { address: '10.0.0.0', prefix: 8, type: 'ipv4' },
      { address: '192.0.2.7', prefix: 32, type: 'ipv4' },
      { address: 'fd00::', prefix: 8, type: 'ipv6' },
    ]);
    expect(config.env.METRICS_ALLOW).toEqual([
      { address: '127.0.0.1', prefix: 32, type: 'ipv4' },
      { address: '::1', prefix: 128, type: 'ipv6' },
    ]);
  });
});

describe('loadConfig: BFF_PORT (the demo BFF on another port)', () => {
  const webBff = (config: ReturnType<typeof loadConfig>) => config.files.clients.find((client) => client.client_id === 'web-bff')!;

  it('moves the demo web-bff URIs to http://localhost:<BFF_PORT> in development with the demo config', () => {
    const client = webBff(loadConfig({ CONFIG_DIR: DEMO_CONFIG, BFF_PORT: '4123' }, ROOT));
    expect(client.redirect_uris).toEqual(['http://localhost:4123/callback']);
    expect(client.post_logout_redirect_uris).toEqual(['http://localhost:4123/']);
    expect(client.backchannel_logout_uri).toBe('http://localhost:4123/backchannel-logout');
  });

  it('leaves them alone without BFF_PORT, outside development, and for any other client', () => {
    expect(webBff(loadConfig({ CONFIG_DIR: DEMO_CONFIG }, ROOT)).redirect_uris).toEqual(['http://localhost:3000/callback']);
    expect(webBff(loadConfig({ CONFIG_DIR: DEMO_CONFIG, BFF_PORT: '4123', NODE_ENV: 'test' }, ROOT)).redirect_uris).toEqual(['http://localhost:3000/callback']);
  });

  it('is never applied to a configuration without demo: true', async () => {
    const dir = await configDir({
      'clients.json': {
        clients: [
          {
            client_id: 'web-bff',
            client_secret_hash: HASH,
            token_endpoint_auth_method: 'client_secret_basic',
            grant_types: ['authorization_code'],
            response_types: ['code'],
            redirect_uris: ['http://localhost:3000/callback'],
            scope: 'openid',
          },
        ],
      },
    });
    expect(webBff(loadConfig({ CONFIG_DIR: dir, BFF_PORT: '4123' }, ROOT)).redirect_uris).toEqual(['http://localhost:3000/callback']);
  });

  it('refuses a BFF_PORT that is not a port', () => {
    expect(() => loadConfig({ CONFIG_DIR: DEMO_CONFIG, BFF_PORT: 'x' }, ROOT)).toThrow(/BFF_PORT/);
  });
});
