import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { certificateBody, createClientBody, initialAccessTokenBody, updateClientBody } from '../clients/admin.schemas.js';
import { ClientError } from '../clients/client-errors.js';
import { createClientService, type ClientService } from '../clients/client.service.js';
import { issueInitialAccessToken, listInitialAccessTokenPage, revokeInitialAccessToken } from '../clients/registration.service.js';
import { loadConfig, type AppConfig } from '../config/load-config.js';
import type { Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrator.js';
import type { Actor } from '../iam/admin-mutation.js';
import { hashSecret } from '../iam/secret-hash.js';
import { openCliDatabase } from './database-notice.js';
import { formatTable } from './table.js';

/** Every CLI change is audited with this actor. */
const CLI: Actor = { actor: 'cli', initiatingEntity: 'admin' };

async function readSecretFromStdin(): Promise<string> {
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and checks a JSON document (`-`: stdin) against `schema`; a bad one names the field. */
async function readJson<S extends z.ZodType>(file: string, schema: S, what: string): Promise<z.output<S>> {
  const text = file === '-' ? await readAll(process.stdin) : await readFile(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ClientError('invalid_client_metadata', `${what} is not valid JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : '');
    throw new ClientError('invalid_client_metadata', `${what}: ${field ? `${field}: ` : ''}${issue.message}`);
  }
  return parsed.data;
}

/** Opens the configured database (as `custos users` does), applies migrations, runs `work` with the client service. */
async function withClients<T>(work: (clients: ClientService, db: Kysely<Database>) => Promise<T>, config: AppConfig = loadConfig()): Promise<T> {
  const { db, close } = await openCliDatabase(config);
  try {
    await migrateToLatest(db);
    const resources = new Set(config.files.resource_servers.map((rs) => rs.identifier));
    const service = createClientService({
      db,
      hashSecret,
      seedSource: config.sources.clients ?? config.configDir,
      // Running servers learn of the change by NOTIFY; oidc-provider's own checks run in the admin API only.
      validation: () => ({ resources, production: config.production }),
    });
    return await work(service, db);
  } finally {
    await close();
  }
}

/** A whole number option (`--uses 3`), checked by the admin API's schema for the field. */
function wholeNumber(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new Error(`${option}: not a whole number: ${value}`);
  return Number(value);
}

/** `--uses` and `--expires-in` as the admin API takes them (same bounds and defaults); a bad one names the option. */
function initialAccessTokenOptions(options: { uses?: string; expiresIn?: string }): { uses: number; expires_in: number } {
  const body = { uses: wholeNumber('--uses', options.uses), expires_in: wholeNumber('--expires-in', options.expiresIn) };
  const parsed = initialAccessTokenBody.safeParse(Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${issue.path[0] === 'uses' ? '--uses' : '--expires-in'}: ${issue.message}`);
  }
  return parsed.data;
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

/**
 * `custos clients create|list|show|update|disable|enable|delete|rotate-secret|add-certificate|
 * retire-certificate|issue-initial-access-token|list-initial-access-tokens|revoke-initial-access-token` (clients as data, without the admin API; each change audited with actor
 * `cli` and announced as an event in one transaction, running servers see it within a second)
 * and `custos clients hash-secret` (for the client file).
 */
export function registerClientsCommands(program: Command): void {
  const clients = program.command('clients').description('manage clients (works with or without a running server)');
  clients
    .command('hash-secret')
    .description('read a client secret from stdin and print its argon2id hash for config/ (client_secret_hash)')
    .action(async () => {
      const secret = await readSecretFromStdin();
      if (secret.length < 16) throw new Error('client secrets need at least 16 characters');
      console.log(await hashSecret(secret));
    });
  clients
    .command('create')
    .description('register a client from RFC 7591 metadata (JSON); prints it, with its generated secret shown once')
    .requiredOption('--metadata <file>', 'JSON file of client metadata ("-": stdin)')
    .action(async (options: { metadata: string }) => {
      const metadata = await readJson(options.metadata, createClientBody, options.metadata);
      const created = await withClients((service) => service.create(metadata, CLI));
      print({ ...created.client, ...(created.client_secret ? { client_secret: created.client_secret } : {}) });
      if (created.client_secret) console.error('custos: the client secret is shown this once; it is stored only as an argon2id hash');
    });
  clients
    .command('list')
    .description('list clients, ordered by id')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (options: { json?: boolean }) => {
      const items = await withClients(async (service) => {
        const all = [];
        let cursor: string | undefined;
        do {
          const page = await service.list({ limit: 200, cursor });
          all.push(...page.items);
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        return all;
      });
      if (options.json) return print(items);
      console.log(
        items.length === 0
          ? 'no clients'
          : formatTable(
              ['CLIENT', 'STATUS', 'MANAGED BY', 'AUTHENTICATION', 'GRANTS'],
              items.map((client) => [client.client_id, client.status, client.managed_by, String(client['token_endpoint_auth_method']), (client['grant_types'] as string[]).join(',')]),
            ),
      );
    });
  clients
    .command('show')
    .description('print a client (metadata, status, secrets without their values, certificate bindings)')
    .argument('<client-id>')
    .action(async (clientId: string) => print(await withClients((service) => service.get(clientId))));
  clients
    .command('update')
    .description("replace a client's metadata (not its authentication method, secrets or certificate bindings)")
    .argument('<client-id>')
    .requiredOption('--metadata <file>', 'JSON file of client metadata ("-": stdin)')
    .action(async (clientId: string, options: { metadata: string }) => {
      const metadata = await readJson(options.metadata, updateClientBody, options.metadata);
      print(await withClients((service) => service.update(clientId, metadata, CLI)));
    });
  for (const name of ['disable', 'enable'] as const) {
    clients
      .command(name)
      .description(name === 'disable' ? 'disable a client and kill every token it holds' : 'enable a disabled client')
      .argument('<client-id>')
      .option('--reason <text>', 'for the audit log and the event')
      .action(async (clientId: string, options: { reason?: string }) => {
        await withClients((service) => service[name](clientId, CLI, options.reason));
        console.log(`client ${clientId} ${name}d`);
      });
  }
  clients
    .command('delete')
    .description('delete a client and kill every token it holds')
    .argument('<client-id>')
    .option('--reason <text>', 'for the audit log and the event')
    .action(async (clientId: string, options: { reason?: string }) => {
      await withClients((service) => service.delete(clientId, CLI, options.reason));
      console.log(`client ${clientId} deleted`);
    });
  clients
    .command('rotate-secret')
    .description('generate a new client secret (printed once); the current one stays valid until --previous-until, or ends now')
    .argument('<client-id>')
    .option('--previous-until <time>', 'ISO 8601 time until which the current secret stays valid (the overlap)')
    .action(async (clientId: string, options: { previousUntil?: string }) => {
      const until = options.previousUntil === undefined ? undefined : new Date(options.previousUntil);
      if (until && Number.isNaN(until.getTime())) throw new Error(`--previous-until: not a time: ${options.previousUntil}`);
      const rotated = await withClients((service) => service.rotateSecret(clientId, CLI, until));
      print({ client_id: clientId, client_secret: rotated.client_secret, secrets: rotated.client.secrets });
    });
  clients
    .command('add-certificate')
    .description('add a certificate binding next to the current ones')
    .argument('<client-id>')
    .option('--san-dns <name>', 'tls_client_auth_san_dns')
    .option('--san-uri <uri>', 'tls_client_auth_san_uri')
    .option('--subject-dn <dn>', 'tls_client_auth_subject_dn')
    .option('--jwks <file>', 'JWK set with x5c, for self_signed_tls_client_auth')
    .action(async (clientId: string, options: { sanDns?: string; sanUri?: string; subjectDn?: string; jwks?: string }) => {
      const binding = options.jwks
        ? { jwks: await readJson(options.jwks, certificateBody.shape.jwks.unwrap(), options.jwks) }
        : {
            ...(options.sanDns ? { tls_client_auth_san_dns: options.sanDns } : {}),
            ...(options.sanUri ? { tls_client_auth_san_uri: options.sanUri } : {}),
            ...(options.subjectDn ? { tls_client_auth_subject_dn: options.subjectDn } : {}),
          };
      const view = await withClients((service) => service.addCertificate(clientId, binding, CLI));
      print(view.certificates);
    });
  clients
    .command('issue-initial-access-token')
    .description('issue an initial access token for dynamic client registration (POST /register); printed once, stored as a SHA-256 hash')
    .option('--uses <n>', 'registrations it allows (1 to 1000; default 1)')
    .option('--expires-in <seconds>', 'lifetime in seconds (60 to 2592000; default 86400)')
    .option('--json', 'print {id, initial_access_token, uses, expires_at} instead of the token alone')
    .action(async (options: { uses?: string; expiresIn?: string; json?: boolean }) => {
      const input = initialAccessTokenOptions(options);
      const config = loadConfig();
      // The registration endpoint exists only while enabled: a token issued otherwise would be useless.
      if (!config.files.client_registration.enabled) {
        throw new Error(`dynamic client registration is off: set client_registration.enabled in a file of ${config.configDir} (docs/operators.md) and restart`);
      }
      const issued = await withClients((_clients, db) => issueInitialAccessToken(db, { uses: input.uses, expiresInSeconds: input.expires_in }, CLI), config);
      if (options.json) print(issued);
      else console.log(issued.initial_access_token);
      console.error(`custos: initial access token ${issued.id} for ${issued.uses} registration(s) until ${issued.expires_at}; shown this once, stored only as a SHA-256 hash`);
    });
  clients
    .command('list-initial-access-tokens')
    .description('list initial access tokens (never the tokens): uses left, expiry, who issued them')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (options: { json?: boolean }) => {
      const items = await withClients(async (_clients, db) => {
        const all = [];
        let cursor: string | undefined;
        do {
          const page = await listInitialAccessTokenPage(db, { limit: 200, cursor });
          all.push(...page.items);
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        return all;
      });
      if (options.json) return print(items);
      console.log(
        items.length === 0
          ? 'no initial access tokens'
          : formatTable(
              ['ID', 'USES LEFT', 'EXPIRES', 'ISSUED BY', 'USABLE'],
              items.map((token) => [token.id, String(token.uses_left), token.expires_at, token.created_by, token.usable ? 'yes' : 'no']),
            ),
      );
    });
  clients
    .command('revoke-initial-access-token')
    .description('revoke an initial access token: no registration can use it from now on')
    .argument('<id>', 'the token id (custos clients list-initial-access-tokens)')
    .action(async (id: string) => {
      await withClients((_clients, db) => revokeInitialAccessToken(db, id, CLI));
      console.log(`initial access token ${id} revoked`);
    });
  clients
    .command('retire-certificate')
    .description('retire a certificate binding (not the last active one)')
    .argument('<client-id>')
    .argument('<certificate-id>', 'the binding id (custos clients show)')
    .action(async (clientId: string, certificateId: string) => {
      const view = await withClients((service) => service.retireCertificate(clientId, certificateId, CLI));
      print(view.certificates);
    });
}
