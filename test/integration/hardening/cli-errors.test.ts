import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
function run(command: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const custos = (args: string[], env: Record<string, string>) => run(process.execPath, ['bin/custos.js', ...args], env);

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
