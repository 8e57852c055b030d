import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { startEmbeddedPostgres } from '../../../src/db/embedded-postgres.js';
import { registerUsersCommands } from '../../../src/cli/users.command.js';
import { createTestDatabase } from '../../helpers/database.js';
import { freePort } from '../../../scripts/free-port.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `custos ...` as a user would (tsx, real process), with `input` on stdin. */
function custos(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'silent', ...options.env };
    if (!options.env?.DATABASE_URL) delete env.DATABASE_URL;
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'src/cli/custos.ts', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * The same commands in this process (a spawned tsx takes seconds on a loaded machine): what a
 * command prints, or the message of the error the `custos` entry point prints as one line.
 */
async function inProcess(args: string[], options: { input?: string; env: Record<string, string> }): Promise<CliResult> {
  const saved = { ...process.env };
  Object.assign(process.env, { NODE_ENV: 'development', LOG_LEVEL: 'silent' }, options.env);
  const out: string[] = [];
  const log = console.log;
  console.log = (...values: unknown[]) => void out.push(values.join(' '));
  try {
    const program = new Command('custos').exitOverride();
    registerUsersCommands(program, { readPassword: async () => (options.input ?? '').replace(/\r?\n$/, '') });
    await program.parseAsync(['node', 'custos', ...args]);
    return { code: 0, stdout: `${out.join('\n')}\n`, stderr: '' };
  } catch (error) {
    return { code: 1, stdout: out.join('\n'), stderr: `custos: ${(error as Error).message}\n` };
  } finally {
    console.log = log;
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

/** The error line of a failed command (after the line naming its database, when there is one). */
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function expectOneLineError(result: CliResult, pattern: RegExp) {
  expect(result.code).not.toBe(0);
  const lines = result.stderr.trim().split('\n').filter((line) => !line.startsWith('custos: database '));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

function withoutPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}

/** The database line of a command's stderr. */
function databaseLine(result: CliResult): string | undefined {
  return result.stderr.split('\n').find((line) => line.startsWith('custos: database '));
}

describe('custos users / roles against DATABASE_URL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<Database>;
  let env: Record<string, string>;
  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    db = createDb(database.url, { max: 2 });
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  it('creates roles and users, changes passwords, roles and status; each change is audited', async () => {
    expect((await inProcess(['roles', 'create', 'orders-reader', '--description', 'reads orders'], { env })).stdout).toContain('created role orders-reader');
    const created = await custos(['users', 'create', '--username', 'Zoe', '--email', 'zoe@example.test', '--role', 'orders-reader', '--password-stdin'], {
      env,
      input: 'a long enough password\n',
    });
    // The one line naming the database, never its password (issue 22 §6).
    expect(created.stderr).toBe(`custos: database ${withoutPassword(database.url)} (DATABASE_URL)\n`);
    expect(created.stderr).not.toContain(`:${new URL(database.url).password}@`);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/created user Zoe \([0-9a-f-]{36}\) with roles orders-reader/);
    const user = await db.selectFrom('iam_user').selectAll().where('username', '=', 'Zoe').executeTakeFirstOrThrow();
    expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(user.email).toBe('zoe@example.test');

    expect((await inProcess(['users', 'set-password', '--username', 'zoe', '--password-stdin'], { env, input: 'another long password\n' })).code).toBe(0);
    const changed = await db.selectFrom('iam_user').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow();
    expect(changed.password_hash).not.toBe(user.password_hash);
    expect((await inProcess(['users', 'disable', '--username', 'zoe'], { env })).stdout).toContain('zoe is now disabled');
    expect((await inProcess(['users', 'enable', '--username', 'zoe'], { env })).stdout).toContain('zoe is now enabled');
    expect((await inProcess(['users', 'remove-role', '--username', 'zoe', '--role', 'orders-reader'], { env })).stdout).toContain('no longer has role orders-reader');
    expect((await inProcess(['users', 'add-role', '--username', 'zoe', '--role', 'orders-reader'], { env })).stdout).toContain('now has role orders-reader');

    const audit = await db.selectFrom('audit_log').select(['actor', 'action', 'target', 'outcome']).orderBy('id').execute();
    expect(audit.map((row) => row.action)).toEqual(['role.create', 'user.create', 'user.password.set', 'user.disable', 'user.enable', 'user.role.unassign', 'user.role.assign']);
    expect(audit.every((row) => row.actor === 'cli' && row.outcome === 'success')).toBe(true);
    const events = await db.selectFrom('event_outbox').select(['type', 'subject']).orderBy('id').execute();
    expect(events.map((event) => event.type)).toEqual(['account-created', 'credential-changed', 'account-disabled', 'account-enabled', 'roles-changed', 'roles-changed']);
    expect(events.every((event) => event.subject === user.id)).toBe(true);
  }, 120_000);

  it('lists, removes and resets a user\'s authenticators (issue 18), audited with credential-change delete events', async () => {
    const user = await db.selectFrom('iam_user').select('id').where('username', '=', 'Zoe').executeTakeFirstOrThrow();
    await db.insertInto('signin_totp').values({ user_id: user.id, secret: 'JBSWY3DPEHPK3PXP', last_step: 0 }).execute();
    const passkey = await db
      .insertInto('signin_passkey')
      .values({ user_id: user.id, credential_id: 'cred-1', public_key: Buffer.from([1]), device_type: 'singleDevice', backed_up: false, attachment: 'cross-platform', name: 'YubiKey' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const listed = await inProcess(['users', 'authenticators', '--username', 'zoe', '--json'], { env });
    expect(JSON.parse(listed.stdout).map((entry: { id: string }) => entry.id)).toEqual(['totp', `passkey-${passkey.id}`]);
    expect(listed.stdout).not.toContain('JBSWY3DPEHPK3PXP');
    expect((await inProcess(['users', 'remove-authenticator', '--username', 'zoe', '--id', `passkey-${passkey.id}`], { env })).stdout).toContain(`removed passkey-${passkey.id} of zoe`);
    expectOneLineError(await inProcess(['users', 'remove-authenticator', '--username', 'zoe', '--id', 'passkey-999'], { env }), /^custos: no such authenticator$/);
    expect((await inProcess(['users', 'reset-authenticators', '--username', 'zoe'], { env })).stdout).toContain('removed totp of zoe');
    expect((await inProcess(['users', 'authenticators', '--username', 'zoe'], { env })).stdout).toContain('zoe has no authenticators');
    expect((await inProcess(['users', 'require-enrollment', '--username', 'zoe', '--factor', 'passkey'], { env })).stdout).toContain('zoe sets up a passkey at the next sign-in');
    expect(await db.selectFrom('signin_enrollment_required').select('factor').where('user_id', '=', user.id).execute()).toEqual([{ factor: 'passkey' }]);
    expectOneLineError(await inProcess(['users', 'require-enrollment', '--username', 'zoe', '--factor', 'sms'], { env }), /otp or passkey/);
    const events = await db.selectFrom('event_outbox').select('payload').where('type', '=', 'credential-changed').orderBy('id').execute();
    const deletes = events.map((row) => JSON.stringify(row.payload)).filter((payload) => payload.includes('"delete"'));
    expect(deletes).toHaveLength(2);
    expect(deletes[0]).toContain('fido2-roaming');
    expect(deletes[1]).toContain('"app"');
    const audit = await db
      .selectFrom('audit_log')
      .select('action')
      .where('action', 'in', ['user.authenticator.remove', 'user.authenticators.reset', 'user.authenticator.require_enrollment'])
      .orderBy('id')
      .execute();
    expect(audit.map((row) => row.action)).toEqual(['user.authenticator.remove', 'user.authenticators.reset', 'user.authenticator.require_enrollment']);
  }, 120_000);

  it('fails with one clear line and a non-zero exit, never a stack trace', async () => {
    // The real entry point: one line on stderr, exit code 1, no stack.
    expectOneLineError(await custos(['users', 'create', '--username', 'zoe', '--password-stdin'], { env, input: 'a long enough password' }), /^custos: username "zoe" is taken$/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'yann', '--password-stdin'], { env, input: '\n' }), /password is empty/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'yann', '--password-stdin'], { env, input: 'short\n' }), /at least 10 characters/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'yannyannyann', '--password-stdin'], { env, input: 'YANNYANNYANN' }), /equals the username/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'yann'], { env }), /--password-stdin/);
    // RFC 8265 (issue 16 §4): another width or case of a name is that name; look-alikes are refused.
    expectOneLineError(await inProcess(['users', 'create', '--username', 'ＺＯＥ', '--password-stdin'], { env, input: 'a long enough password' }), /username "ZOE" is taken/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'z\u043Ee', '--password-stdin'], { env, input: 'a long enough password' }), /one script/);
    expectOneLineError(await inProcess(['users', 'create', '--username', 'zoe\u200B', '--password-stdin'], { env, input: 'a long enough password' }), /U\+200B/);
    expect((await inProcess(['users', 'disable', '--username', 'ＺＯＥ'], { env })).stdout).toContain('ＺＯＥ is now disabled');
    expect((await inProcess(['users', 'enable', '--username', 'Zoe'], { env })).stdout).toContain('Zoe is now enabled');
    expectOneLineError(await inProcess(['users', 'set-password', '--username', 'nobody', '--password-stdin'], { env, input: 'a long enough password' }), /no user "nobody"/);
    expectOneLineError(await inProcess(['users', 'disable', '--username', 'nobody'], { env }), /no user "nobody"/);
    expectOneLineError(await inProcess(['users', 'add-role', '--username', 'zoe', '--role', 'no-such-role'], { env }), /no role "no-such-role"/);
    expectOneLineError(await inProcess(['roles', 'create', 'orders-reader'], { env }), /role "orders-reader" exists/);
    expectOneLineError(await inProcess(['roles', 'create', 'Bad Name'], { env }), /role names match/);
    expect(await db.selectFrom('iam_user').select('username').where('username', '=', 'yann').execute()).toEqual([]);
  }, 120_000);

  it('lists users, roles and a user\'s sessions: a table, or a JSON array with --json; all, or --limit (issue 22 §6)', async () => {
    expect((await inProcess(['roles', 'create', 'orders-writer', '--description', 'places orders'], { env })).code).toBe(0);
    for (const name of ['amy', 'ben', 'cat']) {
      expect((await inProcess(['users', 'create', '--username', name, '--email', `${name}@example.test`, '--role', 'orders-writer', '--password-stdin'], { env, input: 'a long enough password' })).code).toBe(0);
    }
    const all = await db.selectFrom('iam_user').select(['id', 'username']).orderBy('id').execute();

    // The real entry point, JSON: every user, the database named on stderr.
    const json = await custos(['users', 'list', '--json'], { env });
    expect(json.code).toBe(0);
    expect(databaseLine(json)).toBe(`custos: database ${withoutPassword(database.url)} (DATABASE_URL)`);
    const listed = JSON.parse(json.stdout) as Array<{ id: string; username: string; roles: string[]; disabled: boolean }>;
    expect(listed.map((user) => user.id)).toEqual(all.map((user) => user.id));
    expect(listed.find((user) => user.username === 'amy')).toMatchObject({ roles: ['orders-writer'], disabled: false, email: 'amy@example.test' });

    const limited = JSON.parse((await inProcess(['users', 'list', '--json', '--limit', '2'], { env })).stdout) as Array<{ id: string }>;
    expect(limited.map((user) => user.id)).toEqual(all.slice(0, 2).map((user) => user.id));
    expectOneLineError(await inProcess(['users', 'list', '--limit', '0'], { env }), /--limit/);

    const table = (await inProcess(['users', 'list'], { env })).stdout.trimEnd().split('\n');
    expect(table[0]).toMatch(/^USERNAME\s+ID\s+EMAIL\s+ROLES\s+STATUS\s+CREATED$/);
    expect(table).toHaveLength(all.length + 1);
    expect(table.find((line) => line.startsWith('amy '))).toMatch(/^amy\s+[0-9a-f-]{36}\s+amy@example\.test\s+orders-writer\s+enabled\s+\d{4}-/);

    const roles = (await inProcess(['roles', 'list'], { env })).stdout.trimEnd().split('\n');
    expect(roles[0]).toMatch(/^NAME\s+DESCRIPTION\s+CREATED$/);
    expect(roles.slice(1).map((line) => line.split(/\s{2,}/)[0])).toEqual(['orders-reader', 'orders-writer']);
    expect(JSON.parse((await inProcess(['roles', 'list', '--json'], { env })).stdout)).toEqual([
      expect.objectContaining({ name: 'orders-reader', description: 'reads orders' }),
      expect.objectContaining({ name: 'orders-writer', description: 'places orders' }),
    ]);

    // Sessions as oidc-provider stores them: two live for amy, one expired, one of another user.
    const amy = all.find((user) => user.username === 'amy')!;
    const ben = all.find((user) => user.username === 'ben')!;
    const session = (uid: string, accountId: string, expiresInSeconds: number) => ({
      model: 'Session',
      id: `session-${uid}`,
      uid,
      grant_id: null,
      user_code: null,
      consumed_at: null,
      payload: JSON.stringify({ uid, accountId, loginTs: 1_796_000_000, authorizations: { 'web-bff': { sid: `sid-${uid}` } } }),
      expires_at: new Date(Date.now() + expiresInSeconds * 1000),
    });
    await db
      .insertInto('oidc_model')
      .values([session('uid-a1', amy.id, 3600), session('uid-a2', amy.id, 3600), session('uid-a3', amy.id, -60), session('uid-b1', ben.id, 3600)] as never)
      .execute();
    const sessions = JSON.parse((await inProcess(['sessions', 'list', '--username', 'AMY', '--json'], { env })).stdout) as Array<{ id: string; clients: string[]; login_at: string }>;
    expect(sessions.map((s) => s.id)).toEqual(['uid-a1', 'uid-a2']);
    expect(sessions[0]).toMatchObject({ clients: ['web-bff'], login_at: new Date(1_796_000_000_000).toISOString() });
    expect(JSON.parse((await inProcess(['sessions', 'list', '--username', 'amy', '--json', '--limit', '1'], { env })).stdout)).toHaveLength(1);
    const sessionTable = (await inProcess(['sessions', 'list', '--username', 'amy'], { env })).stdout.trimEnd().split('\n');
    expect(sessionTable[0]).toMatch(/^SESSION\s+LOGIN\s+EXPIRES\s+CLIENTS$/);
    expect(sessionTable.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(['uid-a1', 'uid-a2']);
    expect((await inProcess(['sessions', 'list', '--username', 'cat'], { env })).stdout.trim()).toBe('no live sessions of cat');
    expect((await inProcess(['sessions', 'list', '--username', 'cat', '--json'], { env })).stdout.trim()).toBe('[]');
    expectOneLineError(await inProcess(['sessions', 'list', '--username', 'nobody'], { env }), /no user "nobody"/);
  }, 120_000);
});

describe('custos users with the embedded PostgreSQL', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'custos-cli-pg-'));
    await chmod(dataDir, 0o755);
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('uses the cluster a running server holds (instead of failing on its lock), and starts it itself otherwise', async () => {
    // Stands in for `npm start`: the embedded cluster of DATA_DIR, running in another process's hands.
    const port = await freePort();
    const running = await startEmbeddedPostgres({ dataDir, port });
    // A different EMBEDDED_PG_PORT: the CLI must find the running cluster from its postmaster.pid.
    const env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) };
    try {
      const created = await custos(['roles', 'create', 'orders-reader'], { env });
      // It says which database it uses: the running cluster, found by its postmaster.pid.
      expect(created.stderr).toMatch(new RegExp(`^custos: database postgres://custos@127\\.0\\.0\\.1:${port}/custos \\(embedded, held by process \\d+, DATA_DIR=${escape(dataDir)}\\)\\n$`));
      expect(created.code).toBe(0);
      const db = createDb(running.connectionString, { max: 1 });
      try {
        expect(await db.selectFrom('iam_role').select('name').execute()).toEqual([{ name: 'orders-reader' }]);
      } finally {
        await db.destroy();
      }
    } finally {
      await running.stop();
    }
    // Nobody runs it now: the CLI starts the cluster, works, and stops it again.
    const user = await custos(['users', 'create', '--username', 'una', '--role', 'orders-reader', '--password-stdin'], { env, input: 'a long enough password' });
    expect(user.stderr).toBe(`custos: database postgres://custos@127.0.0.1:${env.EMBEDDED_PG_PORT}/custos (embedded, started for this command and stopped after it, DATA_DIR=${dataDir})\n`);
    expect(user.stdout).toContain('created user una');
  }, 120_000);

  it('says so when it creates a new, empty cluster (a command run in another directory without DATABASE_URL)', async () => {
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'custos-cli-elsewhere-'));
    try {
      await chmod(elsewhere, 0o755);
      const env = { DATA_DIR: path.join(elsewhere, '.data'), EMBEDDED_PG_PORT: String(await freePort()) };
      const result = await custos(['users', 'create', '--username', 'una', '--role', 'orders-reader', '--password-stdin'], { env, input: 'a long enough password' });
      expect(result.code).toBe(1);
      const [notice, error, ...rest] = result.stderr.trimEnd().split('\n');
      expect(notice).toBe(
        `custos: database postgres://custos@127.0.0.1:${env.EMBEDDED_PG_PORT}/custos (embedded, NEW empty cluster created for this command in DATA_DIR=${env.DATA_DIR}; not the one you meant? set DATABASE_URL or DATA_DIR)`,
      );
      expect(error).toBe('custos: no role "orders-reader"');
      expect(rest).toEqual([]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  }, 120_000);
});
