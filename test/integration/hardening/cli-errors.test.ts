import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

let work: string;
let busy: Server;
let busyPort: number;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let production: Record<string, string>;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-cli-errors-'));
  // initdb runs as an unprivileged postgres user when the tests run as root (and nobody reads the config).
  await chmod(work, 0o755);
  database = await createTestDatabase();
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as { port: number }).port;
  const configDir = path.join(work, 'config');
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  // Without the demo markers (every demo file carries one), as an operator adapting it would.
  for (const name of ['clients.json', 'resource-servers.json', 'token-exchange.json']) {
    const file = path.join(configDir, name);
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), demo: false }));
  }
  production = {
    NODE_ENV: 'production',
    ISSUER: 'https://auth.example',
    KEYS_DIR: path.join(work, 'keys'),
    CONFIG_DIR: configDir,
    TLS_CERT_FILE: path.join(work, 'tls/server.pem'),
    TLS_KEY_FILE: path.join(work, 'tls/server.key.pem'),
    TLS_CLIENT_CA_FILE: path.join(work, 'tls/ca.pem'),
    COOKIE_KEYS: 'k'.repeat(40),
  };
});
afterAll(async () => {
  await new Promise((resolve) => busy?.close(resolve));
  await database?.drop();
  await rm(work, { recursive: true, force: true });
});

/** Runs a command with only PATH and HOME from this environment; resolves with exit code and output. */
function run(command: string, args: string[], env: Record<string, string>, options: { cwd?: string; uid?: number; gid?: number } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, ...options, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const custos = (args: string[], env: Record<string, string>, options: { cwd?: string; uid?: number; gid?: number } = {}) =>
  run(process.execPath, [path.join(ROOT, 'bin/custos.js'), ...args], env, options);
const root = process.getuid?.() === 0;

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One line naming the cause, exit code 1, no stack trace. */
function expectOneLine(result: { code: number; stderr: string }, ...mentions: RegExp[]) {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.split('\n').filter((line) => line.trim() && !line.startsWith('>') && !line.startsWith('npm '));
  expect(lines, result.stderr).toHaveLength(1);
  expect(result.stderr).not.toMatch(/TypeError|^\s+at /m);
  for (const mention of mentions) expect(lines[0]).toMatch(mention);
}

describe('CLI failures print one line with the cause (issue 10 #9)', () => {
  it('npm run migrate with the embedded PostgreSQL port taken', async () => {
    const result = await run('npm', ['run', '--silent', 'migrate'], { EMBEDDED_PG_PORT: String(busyPort), DATA_DIR: path.join(work, 'data-a') });
    expectOneLine(result, /EMBEDDED_PG_PORT=\d+/, new RegExp(`port ${busyPort} is already in use`));
  });

  it('custos serve with the embedded PostgreSQL port taken', async () => {
    const result = await custos(['serve'], { EMBEDDED_PG_PORT: String(busyPort), DATA_DIR: path.join(work, 'data-b'), PORT: '0', LOG_LEVEL: 'silent' });
    expectOneLine(result, /EMBEDDED_PG_PORT/, /already in use/);
  });

  it('custos migrate against a data directory whose PostgreSQL cannot be reached names the cause', async () => {
    const dataDir = path.join(work, 'data-c');
    await mkdir(path.join(dataDir, 'pg'), { recursive: true });
    // The lock file of a live process whose PostgreSQL does not answer on the port it names.
    const port = await closedPort();
    await writeFile(path.join(dataDir, 'pg', 'postmaster.pid'), `${process.pid}\n${dataDir}\n0\n${port}\n`);
    const result = await custos(['migrate'], { DATA_DIR: dataDir });
    expectOneLine(result, /embedded PostgreSQL/, new RegExp(`127\\.0\\.0\\.1:${port}`), /ECONNREFUSED/);
  });

  it('production: an unreachable database names DATABASE_URL and the cause', async () => {
    const port = await closedPort();
    const result = await custos(['migrate'], { ...production, DATABASE_URL: `postgres://custos:custos@127.0.0.1:${port}/custos` });
    expectOneLine(result, /DATABASE_URL/, new RegExp(`127\\.0\\.0\\.1:${port}`), /ECONNREFUSED/);
  });

  it('production: a wrong password names DATABASE_URL and the cause, never the password', async () => {
    const url = new URL(database.url);
    url.password = 'wrong-password-Tk29';
    const result = await custos(['migrate'], { ...production, DATABASE_URL: url.toString() });
    expectOneLine(result, /DATABASE_URL/, /password authentication failed/);
    expect(result.stderr).not.toContain('wrong-password-Tk29');
  });

  it('ISSUER=http://… says that https is required', async () => {
    const result = await custos(['check-config'], { ISSUER: 'http://auth.example' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ISSUER: .*https is required/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

});

describe('CLI failures name the real cause, with one prefix (issue 22 #5)', () => {
  it('a data directory this user cannot write: permission denied on it, not "is custos already running?"', async () => {
    const parent = path.join(work, 'not-writable');
    await mkdir(parent, { recursive: true });
    await chmod(parent, 0o555);
    // Root writes anywhere: then run as nobody, who may enter the directory but not write in it.
    const user = root ? { uid: 65534, gid: 65534 } : {};
    const result = await custos(['migrate'], { DATA_DIR: path.join(parent, 'data'), CONFIG_DIR: path.join(work, 'config'), HOME: work }, { cwd: work, ...user });
    expectOneLine(result, /^custos: embedded PostgreSQL .* permission denied on \S*not-writable\/data; choose a DATA_DIR this user can write/);
    expect(result.stderr).not.toMatch(/already running|EACCES/);
  });

  it('TLS_CERT_FILE without TLS_KEY_FILE in development is a one-line configuration error naming what is missing', async () => {
    const result = await custos(['check-config'], { TLS_CERT_FILE: path.join(work, 'tls/server.pem'), CONFIG_DIR: path.join(work, 'config') });
    expectOneLine(result, /^custos: invalid configuration: environment variables TLS_KEY_FILE and TLS_CLIENT_CA_FILE: required with TLS_CERT_FILE/);
  });

  it('custos bogus: an unknown command, and the commands there are', async () => {
    const result = await custos(['bogus'], {});
    expectOneLine(result, /^custos: unknown command 'bogus' \(commands: serve, migrate, check-config, keys, pki, /);
    expect(result.stderr).not.toContain("for 'serve'");
  });

  it('every failure starts with "custos: ", commander\'s own included', async () => {
    expectOneLine(await custos(['serve', '--bogus'], {}), /^custos: unknown option '--bogus'/);
    expectOneLine(await custos(['pki', 'issue'], {}), /^custos: required option '--name <name>' not specified/);
    expectOneLine(await custos(['check-config'], { ISSUER: 'http://auth.example' }), /^custos: invalid configuration: environment variable ISSUER: .*https is required/);
  });

  it('custos pki thumbprint missing.pem: cannot read it, no such file (no raw ENOENT)', async () => {
    const result = await custos(['pki', 'thumbprint', 'missing.pem'], {}, { cwd: work });
    expectOneLine(result, /^custos: cannot read missing\.pem: no such file$/);
  });

  it('npm run example:token-exchange with its embedded PostgreSQL port taken', async () => {
    const result = await run('npm', ['run', '--silent', 'example:token-exchange'], { EMBEDDED_PG_PORT: String(busyPort), DATA_DIR: path.join(work, 'data-example') });
    expectOneLine(result, /^custos: embedded PostgreSQL .*EMBEDDED_PG_PORT=\d+/, new RegExp(`port ${busyPort} is already in use`));
  });

  it.skipIf(!root)('as root, with DATA_DIR in a directory other users cannot enter (mktemp -d): why PostgreSQL cannot start and what to do', async () => {
    const closed = await mkdtemp(path.join(tmpdir(), 'custos-closed-'));
    try {
      await chmod(closed, 0o700);
      const result = await custos(['migrate'], { DATA_DIR: path.join(closed, 'data'), CONFIG_DIR: path.join(work, 'config'), EMBEDDED_PG_PORT: String(await closedPort()) }, { cwd: closed });
      expectOneLine(
        result,
        new RegExp(`^custos: embedded PostgreSQL .*runs as the user postgres, which cannot enter ${closed} \\(mode 0700\\) to reach DATA_DIR; let others enter it \\(chmod o\\+x ${closed}\\)`),
      );
      expect(result.stderr).not.toMatch(/spawn|EACCES|already running/);
      // Started from such a directory with DATA_DIR elsewhere, it works: only the paths PostgreSQL uses matter.
      const elsewhere = await custos(['migrate'], { DATA_DIR: path.join(work, 'data-open'), CONFIG_DIR: path.join(work, 'config'), EMBEDDED_PG_PORT: String(await closedPort()) }, { cwd: closed });
      // Only the line naming the database it uses (a new cluster there), no error.
      expect(elsewhere.stderr).toMatch(/^custos: database postgres:\/\/custos@127\.0\.0\.1:\d+\/custos \(embedded, NEW empty cluster created for this command in DATA_DIR=[^;\s]+; [^\n]*\)\n$/);
      expect(elsewhere.stdout).toContain('applied: ');
    } finally {
      await rm(closed, { recursive: true, force: true });
    }
  });
});

