import { InvalidArgumentError, type Command } from 'commander';
import type { Kysely } from 'kysely';
import { pino } from 'pino';
import { loadConfig, type AppConfig } from '../config/load-config.js';
import type { Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrator.js';
import { argon2CostOf, createPasswordHasher } from '../iam/password-hasher.js';
import type { Actor } from '../iam/admin-mutation.js';
import { IamError } from '../iam/iam-errors.js';
import type { Page } from '../iam/pagination.js';
import { createSessionService } from '../iam/session.service.js';
import { findUserByUsername } from '../iam/user.repository.js';
import { createUserService, type UserService } from '../iam/user.service.js';
import { createAuthenticatorService } from '../signin/authenticator.service.js';
import { ENROLLMENT_LINK_DEFAULT_SECONDS, ENROLLMENT_LINK_MAX_SECONDS } from '../signin/enrollment-link.js';
import { openCliDatabase } from './database-notice.js';
import { formatTable } from './table.js';

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
 * server, or starting it) and says which one on stderr, applies pending migrations, runs `work`,
 * closes.
 */
async function withUsers<T>(work: (users: UserService, db: Kysely<Database>, config: AppConfig) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { db, close } = await openCliDatabase(config);
  try {
    await migrateToLatest(db);
    const hasher = createPasswordHasher({ cost: argon2CostOf(config.env) });
    return await work(createUserService({ db, hasher }), db, config);
  } finally {
    await close();
  }
}

/** Rows fetched per query when listing; `--limit` caps the total. */
const PAGE_SIZE = 200;

/** Every item of a keyset-paginated list, or the first `limit`. */
async function collectPages<T>(fetch: (page: { limit: number; cursor?: string }) => Promise<Page<T>>, limit?: number): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const want = limit === undefined ? PAGE_SIZE : Math.min(PAGE_SIZE, limit - items.length);
    const page = await fetch({ limit: want, cursor });
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined && (limit === undefined || items.length < limit));
  return items;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of at least 1');
  return n;
}

interface ListOptions {
  json?: boolean;
  limit?: number;
}

/** Prints a list: a JSON array with `--json`, else a table (or `empty` when there is nothing). */
function printList<T>(items: T[], options: ListOptions, empty: string, headers: string[], row: (item: T) => string[]): void {
  if (options.json) console.log(JSON.stringify(items, null, 2));
  else console.log(items.length === 0 ? empty : formatTable(headers, items.map(row)));
}

function addListOptions(command: Command): Command {
  return command.option('--json', 'print a JSON array instead of a table').option('--limit <n>', 'at most n entries (default: all)', positiveInteger);
}

const orDash = (value: string | null | undefined) => (value ? value : '-');

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `custos users create|set-password|disable|enable|add-role|remove-role|list`, `custos roles
 * create|list` and `custos sessions list`: bootstrap and inspect users without the admin API.
 * Each change writes its audit record (actor `cli`) and, where IAM state changes, its event, in
 * one transaction. Every command names the database it uses on stderr.
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

  addListOptions(users.command('list').description('list users (all, or the first --limit), ordered by id')).action(async (options: ListOptions) => {
    const items = await withUsers((service) => collectPages((page) => service.list(page), options.limit));
    printList(items, options, 'no users', ['USERNAME', 'ID', 'EMAIL', 'ROLES', 'STATUS', 'CREATED'], (user) => [
      user.username,
      user.id,
      orDash(user.email),
      orDash(user.roles.join(',')),
      user.disabled ? 'disabled' : 'enabled',
      user.created_at,
    ]);
  });

  // Second factors and passkeys (src/signin/): list, remove one, reset all (audited, CAEP events).
  async function withAuthenticators<T>(username: string, work: (service: ReturnType<typeof createAuthenticatorService>, userId: string) => Promise<T>): Promise<T> {
    return withUsers(async (_users, db) => {
      const user = await findUserByUsername(db, username);
      if (!user) throw new IamError('user_not_found', `no user "${username}"`);
      return work(createAuthenticatorService({ db }), user.id);
    });
  }
  users
    .command('authenticators')
    .description("list a user's authenticator app and passkeys")
    .requiredOption('--username <name>', 'username')
    .option('--json', 'print a JSON array')
    .action(async (options: { username: string; json?: boolean }) => {
      const { authenticators } = await withAuthenticators(options.username, (service, id) => service.list(id));
      printList(authenticators, options, `${options.username} has no authenticators`, ['ID', 'TYPE', 'NAME', 'CREATED', 'LAST USED'], (entry) => [
        entry.id,
        entry.type,
        entry.type === 'passkey' ? entry.name : `${entry.recovery_codes_left} recovery codes left`,
        entry.created_at,
        orDash(entry.last_used_at),
      ]);
    });
  users
    .command('remove-authenticator')
    .description('remove one authenticator of a user (totp, or passkey-<n> from `users authenticators`)')
    .requiredOption('--username <name>', 'username')
    .requiredOption('--id <id>', 'authenticator id')
    .action(async (options: { username: string; id: string }) => {
      const { removed } = await withAuthenticators(options.username, (service, id) => service.remove(CLI, id, options.id));
      console.log(`removed ${removed.join(', ')} of ${options.username}`);
    });
  users
    .command('reset-authenticators')
    .description("remove all of a user's authenticators (the next sign-in that needs one sets it up again)")
    .requiredOption('--username <name>', 'username')
    .action(async (options: { username: string }) => {
      const { removed } = await withAuthenticators(options.username, (service, id) => service.remove(CLI, id));
      console.log(removed.length ? `removed ${removed.join(', ')} of ${options.username}` : `${options.username} had no authenticators`);
    });

  users
    .command('enrollment-link')
    .description('issue a one-time link with which a user creates a passkey without a password (printed once; earlier unused links stop working)')
    .requiredOption('--username <name>', 'username')
    .option('--expires-in <seconds>', `how long the link stays valid (60 to ${ENROLLMENT_LINK_MAX_SECONDS}, default ${ENROLLMENT_LINK_DEFAULT_SECONDS})`, (value: string) => {
      const seconds = Number(value);
      if (!Number.isInteger(seconds) || seconds < 60 || seconds > ENROLLMENT_LINK_MAX_SECONDS) throw new InvalidArgumentError(`a whole number of seconds from 60 to ${ENROLLMENT_LINK_MAX_SECONDS}`);
      return seconds;
    })
    .action(async (options: { username: string; expiresIn?: number }) => {
      const link = await withUsers(async (_users, db, config) => {
        const user = await findUserByUsername(db, options.username);
        if (!user) throw new IamError('user_not_found', `no user "${options.username}"`);
        const issuer = config.env.ISSUER ?? `https://localhost:${config.env.PORT}`;
        return createAuthenticatorService({ db, issuer: () => issuer }).issueEnrollmentLink(CLI, user.id, options.expiresIn ?? ENROLLMENT_LINK_DEFAULT_SECONDS);
      });
      console.log(link.url);
      console.error(`one-time link for ${options.username}, valid until ${link.expires_at}; hand it over out of band`);
    });

  users
    .command('require-enrollment')
    .description('have a user set up an authenticator app (otp) or a passkey at the next sign-in')
    .requiredOption('--username <name>', 'username')
    .requiredOption('--factor <factor>', 'otp or passkey', (value: string) => {
      if (value !== 'otp' && value !== 'passkey') throw new InvalidArgumentError('otp or passkey');
      return value;
    })
    .action(async (options: { username: string; factor: 'otp' | 'passkey' }) => {
      await withAuthenticators(options.username, (service, id) => service.requireAtNextSignIn(CLI, id, options.factor));
      console.log(`${options.username} sets up ${options.factor === 'otp' ? 'an authenticator app' : 'a passkey'} at the next sign-in`);
    });

  const roles = program.command('roles').description('manage roles');
  addListOptions(roles.command('list').description('list roles (all, or the first --limit), ordered by name')).action(async (options: ListOptions) => {
    const items = await withUsers((service) => collectPages((page) => service.listRoles(page), options.limit));
    printList(items, options, 'no roles', ['NAME', 'DESCRIPTION', 'CREATED'], (role) => [role.name, orDash(role.description), role.created_at]);
  });
  roles
    .command('create')
    .description('create a role')
    .argument('<name>', 'role name: lower case, starting with a letter, up to 64 of a-z 0-9 : _ . -')
    .option('--description <text>', 'what the role is for')
    .action(async (name: string, options: { description?: string }) => {
      await withUsers((service) => service.createRole({ name, description: options.description ?? null }, CLI));
      console.log(`created role ${name}`);
    });

  const sessions = program.command('sessions').description("see users' sessions (revoke them with `users disable` or the admin API)");
  addListOptions(
    sessions.command('list').description("list a user's live sessions (all, or the first --limit)").requiredOption('--username <name>', 'username'),
  ).action(async (options: ListOptions & { username: string }) => {
    const items = await withUsers(async (_service, db) => {
      const user = await findUserByUsername(db, options.username);
      if (!user) throw new IamError('user_not_found', `no user "${options.username}"`);
      // Listing needs neither the provider nor a logger (those serve revocation's back-channel logout).
      const service = createSessionService({
        db,
        provider: () => {
          throw new Error('no provider in the CLI');
        },
        logger: pino({ level: 'silent' }),
      });
      return collectPages((page) => service.list(user.id, page), options.limit);
    });
    printList(items, options, `no live sessions of ${options.username}`, ['SESSION', 'LOGIN', 'EXPIRES', 'CLIENTS'], (session) => [
      session.id,
      orDash(session.login_at),
      orDash(session.expires_at),
      orDash(session.clients.join(',')),
    ]);
  });
}
