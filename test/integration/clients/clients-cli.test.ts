import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerClientsCommands } from '../../../src/cli/clients.command.js';
import { describeError } from '../../../src/cli/describe-error.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

// `custos clients ...` against the database of a running server: the server sees every change
// (NOTIFY) without a restart. One command runs as a real process; the rest in this process.
const ROOT = path.resolve(import.meta.dirname, '../../..');
let app: TestApp;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  app = await startTestApp();
  dir = await mkdtemp(path.join(tmpdir(), 'custos-clients-cli-'));
  env = { DATABASE_URL: app.databaseUrl, CONFIG_DIR: app.configDir, KEYS_DIR: app.keysDir };
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `custos ...` as a user runs it (tsx, a real process), with `input` on stdin. */
function custos(args: string[], input = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'src/cli/custos.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'silent', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** The same commands in this process; a failure is the one line the entry point prints. */
async function inProcess(args: string[]): Promise<CliResult> {
  const saved = { ...process.env };
  Object.assign(process.env, { NODE_ENV: 'development', LOG_LEVEL: 'silent' }, env);
  const out: string[] = [];
  const log = console.log;
  console.log = (...values: unknown[]) => void out.push(values.join(' '));
  try {
    const program = new Command('custos').exitOverride();
    registerClientsCommands(program);
    await program.parseAsync(['node', 'custos', ...args]);
    return { code: 0, stdout: out.join('\n'), stderr: '' };
  } catch (error) {
    return { code: 1, stdout: out.join('\n'), stderr: `custos: ${describeError(error)}` };
  } finally {
    console.log = log;
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

const form = { grant_type: 'client_credentials', scope: 'orders:read', resource: DEMO.ordersResource };

async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await attempt();
  for (let i = 0; i < 50 && !done(value); i++) {
    await sleep(100);
    value = await attempt();
  }
  return value;
}

describe('custos clients', () => {
  let secret: string;

  it('create: registers a client from RFC 7591 metadata on stdin and prints its secret once; the running server takes it', async () => {
    const metadata = { client_id: 'cli-job', grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource], default_resource: DEMO.ordersResource };
    const created = await custos(['clients', 'create', '--metadata', '-'], JSON.stringify(metadata));
    expect(created.code, created.stderr).toBe(0);
    const printed = JSON.parse(created.stdout);
    expect(printed).toMatchObject({ client_id: 'cli-job', managed_by: 'api', status: 'active' });
    secret = printed.client_secret;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown this once');
    const token = await eventually(() => app.token(form, { basic: ['cli-job', secret] }), (r) => r.status === 200);
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'action']).where('target', '=', 'client:cli-job').execute();
    expect(audit).toEqual([{ actor: 'cli', action: 'client.create' }]);
  });

  it('list, show, rotate-secret, disable, enable, delete', async () => {
    const list = await inProcess(['clients', 'list']);
    expect(list.stdout).toMatch(/cli-job\s+active\s+api\s+client_secret_basic/);
    expect(list.stdout).toMatch(/orders-api\s+active\s+config\s+tls_client_auth/);
    const shown = JSON.parse((await inProcess(['clients', 'show', 'cli-job'])).stdout);
    expect(shown.secrets).toHaveLength(1);
    expect(JSON.stringify(shown)).not.toContain(secret);

    const rotated = await inProcess(['clients', 'rotate-secret', 'cli-job']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newSecret = JSON.parse(rotated.stdout).client_secret as string;
    expect((await eventually(() => app.token(form, { basic: ['cli-job', secret] }), (r) => r.status === 401)).status).toBe(401);
    expect((await app.token(form, { basic: ['cli-job', newSecret] })).status).toBe(200);

    expect((await inProcess(['clients', 'disable', 'cli-job', '--reason', 'test'])).stdout).toBe('client cli-job disabled');
    expect((await eventually(() => app.token(form, { basic: ['cli-job', newSecret] }), (r) => r.status === 401)).status).toBe(401);
    expect((await inProcess(['clients', 'enable', 'cli-job'])).stdout).toBe('client cli-job enabled');
    expect((await eventually(() => app.token(form, { basic: ['cli-job', newSecret] }), (r) => r.status === 200)).status).toBe(200);
    expect((await inProcess(['clients', 'delete', 'cli-job'])).stdout).toBe('client cli-job deleted');
    expect((await inProcess(['clients', 'show', 'cli-job'])).stderr).toBe('custos: no client cli-job');
  });

  it('add-certificate and retire-certificate on an mTLS client', async () => {
    const file = path.join(dir, 'mtls.json');
    await writeFile(
      file,
      JSON.stringify({ client_id: 'cli-mtls', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'old.clients.custos.test', grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource] }),
    );
    expect((await inProcess(['clients', 'create', '--metadata', file])).code).toBe(0);
    const added = await inProcess(['clients', 'add-certificate', 'cli-mtls', '--san-dns', 'new.clients.custos.test']);
    expect(added.code, added.stderr).toBe(0);
    const bindings = JSON.parse(added.stdout) as Array<{ id: string; binding: Record<string, string> }>;
    expect(bindings.map((b) => b.binding)).toEqual([{ tls_client_auth_san_dns: 'old.clients.custos.test' }, { tls_client_auth_san_dns: 'new.clients.custos.test' }]);
    const retired = JSON.parse((await inProcess(['clients', 'retire-certificate', 'cli-mtls', bindings[0]!.id])).stdout);
    expect(retired[0].retired_at).not.toBeNull();
    expect((await inProcess(['clients', 'retire-certificate', 'cli-mtls', bindings[1]!.id])).stderr).toMatch(/^custos: this is the only active certificate binding/);
  });

  it('fails with one line naming the cause: a config-managed client, invalid metadata', async () => {
    const refused = await inProcess(['clients', 'disable', 'orders-api']);
    expect(refused.stderr).toMatch(/^custos: client orders-api is managed by the client file .*: edit the file and restart/);
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ client_id: 'bad', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://x.example/*'] }));
    expect((await inProcess(['clients', 'create', '--metadata', bad])).stderr).toMatch(/^custos: redirect_uris: https:\/\/x\.example\/\*: no wildcards/);
    const unknownField = path.join(dir, 'unknown.json');
    await writeFile(unknownField, JSON.stringify({ client_id: 'bad', grant_types: ['client_credentials'], colour: 'blue' }));
    expect((await inProcess(['clients', 'create', '--metadata', unknownField])).stderr).toMatch(/^custos: .*unknown\.json: colour: /);
  });
});
