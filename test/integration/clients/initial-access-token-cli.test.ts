import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/clients/registration.repository.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

// `custos clients issue-initial-access-token`, run as a user runs it (a real process against the
// database of a running server with dynamic registration enabled), and the docs/administrators.md
// block that issues a token and registers a client with it, as written.
const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
let configDir: string;
let work: string;
let app: TestApp;
let env: Record<string, string>;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'custos-iat-cli-config-'));
  work = await mkdtemp(path.join(tmpdir(), 'custos-iat-cli-'));
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  await writeFile(
    path.join(configDir, 'registration.json'),
    JSON.stringify({ client_registration: { enabled: true, grant_types: ['client_credentials'], scopes: ['orders:read'], resources: [DEMO.ordersResource] } }),
  );
  app = await startTestApp({ configDir });
  env = { DATABASE_URL: app.databaseUrl, CONFIG_DIR: configDir, KEYS_DIR: app.keysDir };
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await rm(configDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `custos ...` as a user runs it (bin/custos.js, a real process). */
function custos(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/custos.js'), ...args], {
      cwd: work,
      env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env, ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

/** The sh block of docs/administrators.md that contains `needle`. */
function documentedBlock(needle: string): string {
  const text = readFileSync(path.join(ROOT, 'docs/administrators.md'), 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)\n```/g)].map((match) => match[1]!);
  const found = blocks.find((block) => block.includes(needle));
  expect(found, `docs/administrators.md: no sh block with ${needle}`).toBeDefined();
  return found!;
}

const tokenRows = () => app.custos.db.selectFrom('client_initial_access_token').select(['id', 'token_hash', 'uses_left', 'expires_at', 'created_by']).orderBy('id').execute();

describe('custos clients issue-initial-access-token', () => {
  it('docs/administrators.md: issues a token and a service registers with it, as written; the token is spent', async () => {
    const script = documentedBlock('issue-initial-access-token')
      .replaceAll('https://localhost:8443', app.issuer)
      .replaceAll('keys/dev/', `${app.keysDir}/`)
      .replaceAll('npx custos', `node '${path.join(ROOT, 'bin/custos.js')}'`);
    const { stdout, stderr } = await run('sh', ['-e', '-c', script], { cwd: work, env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env } });
    expect(stderr).toMatch(/^custos: initial access token \d+ for 1 registration\(s\) until \S+; shown this once/m);
    expect(stderr).not.toMatch(/\n\s+at /);
    const registered = JSON.parse(stdout);
    expect(registered).toMatchObject({ client_name: 'Nightly report', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' });
    expect(registered.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(registered.registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The one use is taken; the audit record names the CLI and holds no token.
    const rows = await tokenRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ uses_left: 0, created_by: 'cli' });
    const audit = await app.custos.db.selectFrom('audit_log').selectAll().where('action', '=', 'client.initial_access_token.issue').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'cli', target: `initial_access_token:${rows[0]!.id}` });
    expect(JSON.stringify(audit[0])).not.toContain(rows[0]!.token_hash);
    // The registered client works.
    const token = await app.token({ grant_type: 'client_credentials', scope: 'orders:read', resource: DEMO.ordersResource }, { basic: [registered.client_id, registered.client_secret] });
    expect(token.status, JSON.stringify(token.body)).toBe(200);
  }, 60_000);

  it('--json prints the token with its id, uses and end; only its SHA-256 hash is stored', async () => {
    const issued = await custos(['clients', 'issue-initial-access-token', '--uses', '3', '--expires-in', '600', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    const body = JSON.parse(issued.stdout);
    expect(body).toMatchObject({ uses: 3, initial_access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    const row = (await tokenRows()).find((candidate) => String(candidate.id) === body.id)!;
    expect(row).toMatchObject({ token_hash: tokenHash(body.initial_access_token), uses_left: 3, created_by: 'cli' });
    expect(Math.abs(new Date(row.expires_at).getTime() - Date.parse(body.expires_at))).toBeLessThan(1000);
    expect(Date.parse(body.expires_at) - Date.now()).toBeGreaterThan(0);
    expect(Date.parse(body.expires_at) - Date.now()).toBeLessThanOrEqual(600_000);
  }, 60_000);

  it('list-initial-access-tokens shows them without the tokens; revoke-initial-access-token ends one', async () => {
    const issued = JSON.parse((await custos(['clients', 'issue-initial-access-token', '--uses', '4', '--json'])).stdout);
    const revoked = await custos(['clients', 'revoke-initial-access-token', issued.id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`initial access token ${issued.id} revoked`);
    const listed = await custos(['clients', 'list-initial-access-tokens', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const items = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(items.map((item) => item.id)).not.toContain(issued.id);
    expect(items.length).toBe((await tokenRows()).length);
    expect(items.every((item) => Object.keys(item).sort().join() === 'created_at,created_by,expires_at,id,usable,uses_left')).toBe(true);
    expect(listed.stdout).not.toContain(issued.initial_access_token);
    // The revoked token registers nothing.
    const { request } = await import('undici');
    const refused = await request(`${app.issuer}/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${issued.initial_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource] }),
      dispatcher: app.agent(),
    });
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();

    const again = await custos(['clients', 'revoke-initial-access-token', issued.id]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n').at(-1)).toBe(`custos: no initial access token ${issued.id}`);
    expect(again.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('fails with one line naming the cause: a bad option, registration off; nothing is issued', async () => {
    const before = await tokenRows();
    const zero = await custos(['clients', 'issue-initial-access-token', '--uses', '0']);
    expect(zero.code).toBe(1);
    expect(zero.stderr.trim()).toMatch(/^custos: --uses: .*1/);
    expect(zero.stderr.trim().split('\n')).toHaveLength(1);
    const words = await custos(['clients', 'issue-initial-access-token', '--expires-in', 'soon']);
    expect(words.code).toBe(1);
    expect(words.stderr.trim()).toBe('custos: --expires-in: not a whole number: soon');

    // The demo configuration leaves registration off.
    const off = await custos(['clients', 'issue-initial-access-token'], { CONFIG_DIR: path.join(ROOT, 'config') });
    expect(off.code).toBe(1);
    expect(off.stderr.trim()).toMatch(/^custos: dynamic client registration is off: set client_registration\.enabled/);
    expect(off.stderr.trim().split('\n')).toHaveLength(1);
    expect(off.stdout).toBe('');
    expect(await tokenRows()).toEqual(before);
  }, 60_000);
});
