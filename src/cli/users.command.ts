import type { Command } from 'commander';
import { loadConfig } from '../config/load-config.js';
import { migrateToLatest } from '../db/migrator.js';
import { openDatabase } from '../db/open-database.js';
import { argon2CostOf, createPasswordHasher } from '../iam/password-hasher.js';
import type { Actor } from '../iam/admin-mutation.js';
import { createUserService, type UserService } from '../iam/user.service.js';

/** Every CLI change is audited with this actor. */
const CLI: Actor = { actor: 'cli', initiatingEntity: 'admin' };

/** Reads the password from stdin: all of it, without one trailing line break. */
async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password (then Enter, Ctrl-D): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function password(options: { passwordStdin?: boolean }, read: () => Promise<string>): Promise<string> {
  if (!options.passwordStdin) throw new Error('give the password on stdin with --password-stdin (never as an argument: it would show in the process list and shell history)');
  return read();
}

/**
 * Opens the configured database (attaching to the embedded PostgreSQL of a running development
 * server, or starting it), applies pending migrations, runs `work`, closes.
 */
async function withUsers<T>(work: (users: UserService) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { db, close } = await openDatabase(config, process.cwd());
  try {
    await migrateToLatest(db);
    const hasher = createPasswordHasher({ cost: argon2CostOf(config.env) });
    return await work(createUserService({ db, hasher }));
  } finally {
    await close();
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `custos users create|set-password|disable|enable|add-role|remove-role` and `custos roles
 * create`: bootstrap users without the admin API. Each change writes its audit record (actor
 * `cli`) and, where IAM state changes, its event, in one transaction.
 */
export function registerUsersCommands(program: Command, deps: { readPassword?: () => Promise<string> } = {}): void {
  const read = deps.readPassword ?? readPasswordFromStdin;
  const users = program.command('users').description('manage users (works with or without a running server)');
  users
    .command('create')
    .description('create a user; the password is read from stdin')
    .requiredOption('--username <name>', 'username (RFC 8265: letters, digits and printable ASCII of one script; unique in any letter case or width)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--email <email>', 'e-mail address')
    .option('--role <role>', 'role to assign (repeatable; the role must exist)', collect, [])
    .action(async (options: { username: string; passwordStdin?: boolean; email?: string; role: string[] }) => {
      const secret = await password(options, read);
      const user = await withUsers((service) => service.create({ username: options.username, email: options.email, password: secret, roles: options.role }, CLI));
      console.log(`created user ${user.username} (${user.id})${user.roles.length ? ` with roles ${user.roles.join(', ')}` : ''}`);
    });
  users
    .command('set-password')
    .description("replace a user's password; the new password is read from stdin")
    .requiredOption('--username <name>', 'username')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (options: { username: string; passwordStdin?: boolean }) => {
      const secret = await password(options, read);
      await withUsers((service) => service.setPassword({ username: options.username }, secret, CLI));
      console.log(`password of ${options.username} changed`);
    });
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    users
      .command(name)
      .description(disabled ? 'disable a user (no more logins nor tokens)' : 'enable a disabled user')
      .requiredOption('--username <name>', 'username')
      .action(async (options: { username: string }) => {
        const { changed } = await withUsers((service) => (disabled ? service.disable : service.enable)({ username: options.username }, CLI));
        console.log(`${options.username} ${changed ? 'is now' : 'was already'} ${disabled ? 'disabled' : 'enabled'}`);
      });
  }
  for (const [name, assign] of [
    ['add-role', true],
    ['remove-role', false],
  ] as const) {
    users
      .command(name)
      .description(assign ? 'assign a role to a user' : 'remove a role from a user')
      .requiredOption('--username <name>', 'username')
      .requiredOption('--role <role>', 'role name')
      .action(async (options: { username: string; role: string }) => {
        const { changed } = await withUsers((service) => (assign ? service.assignRole : service.unassignRole)({ username: options.username }, options.role, CLI));
        const state = assign ? (changed ? 'now has' : 'already had') : changed ? 'no longer has' : 'did not have';
        console.log(`${options.username} ${state} role ${options.role}`);
      });
  }

  const roles = program.command('roles').description('manage roles');
  roles
    .command('create')
    .description('create a role')
    .argument('<name>', 'role name: lower case, starting with a letter, up to 64 of a-z 0-9 : _ . -')
    .option('--description <text>', 'what the role is for')
    .action(async (name: string, options: { description?: string }) => {
      await withUsers((service) => service.createRole({ name, description: options.description ?? null }, CLI));
      console.log(`created role ${name}`);
    });
}
