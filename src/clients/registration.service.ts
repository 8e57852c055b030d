import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ClientRegistrationPolicy } from '../config/files.js';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { DEFAULT_WRITERS, mutate, type Actor } from '../iam/admin-mutation.js';
import type { ClientInput, ClientService, ClientView } from './client.service.js';
import { ClientError } from './client-errors.js';
import { decodeCursor, toPage, type Page } from '../iam/pagination.js';
import {
  clientOfRegistrationToken,
  deleteInitialAccessToken,
  insertInitialAccessToken,
  insertRegistrationToken,
  listInitialAccessTokens,
  takeInitialAccessToken,
  tokenHash,
  type InitialAccessTokenRow,
} from './registration.repository.js';

/** A missing, unknown, used-up or expired bearer token (RFC 6750 §3.1), answered 401. */
export class RegistrationTokenError extends AppError {
  constructor(message: string) {
    super('invalid_token', message, { status: 401 });
  }
}

/**
 * Fields only an administrator may set: privileges, not metadata a client may ask for itself
 * (`backchannel_logout_uri`: logout tokens to it are sent without the SSRF guard, see
 * src/oidc/logout.ts `outboundFetch`).
 */
const PRIVILEGED = ['first_party', 'introspection', 'serves', 'backchannel_logout_uri', 'client_id', 'client_secret', 'client_secret_hash'] as const;
const newToken = () => randomBytes(32).toString('base64url');

export interface InitialAccessTokenInput {
  uses: number;
  expiresInSeconds: number;
}

/**
 * Issues an initial access token for dynamic registration, audited in the same transaction; the
 * token is in the answer only (stored as its SHA-256 hash). The admin API and `custos clients
 * issue-initial-access-token` both come here.
 */
export async function issueInitialAccessToken(db: Kysely<Database>, input: InitialAccessTokenInput, by: Actor) {
  const token = newToken();
  const expiresAt = new Date(Date.now() + input.expiresInSeconds * 1000);
  const id = await mutate(db, DEFAULT_WRITERS, by, async (trx) => {
    const created = await insertInitialAccessToken(trx, { hash: tokenHash(token), uses: input.uses, expiresAt, createdBy: by.actor });
    return { result: created, action: 'client.initial_access_token.issue', target: `initial_access_token:${created}`, details: { uses: input.uses, expires_at: expiresAt.toISOString() } };
  });
  return { id, initial_access_token: token, uses: input.uses, expires_at: expiresAt.toISOString() };
}

/** An initial access token as the admin API and the CLI list it (never the token). */
export interface InitialAccessTokenView {
  id: string;
  uses_left: number;
  expires_at: string;
  created_by: string;
  created_at: string;
  /** Uses left and not expired: a registration may still use it. */
  usable: boolean;
}

const INITIAL_ACCESS_TOKEN_ID = /^\d{1,18}$/;

function toInitialAccessTokenView(row: InitialAccessTokenRow, now = Date.now()): InitialAccessTokenView {
  return {
    id: row.id,
    uses_left: row.usesLeft,
    expires_at: row.expiresAt.toISOString(),
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    usable: row.usesLeft > 0 && row.expiresAt.getTime() > now,
  };
}

/** Initial access tokens by id, a page at a time (used-up and expired ones until the purge removes them). */
export async function listInitialAccessTokenPage(db: Kysely<Database>, page: { limit: number; cursor?: string }): Promise<Page<InitialAccessTokenView>> {
  const after = decodeCursor(page.cursor, (key) => INITIAL_ACCESS_TOKEN_ID.test(key));
  const rows = await listInitialAccessTokens(db, { limit: page.limit + 1, after });
  return toPage(rows, page.limit, (row) => row.id, (row) => toInitialAccessTokenView(row));
}

/** Revokes (deletes) an initial access token, audited in the same transaction: from the commit on no registration can use it. */
export async function revokeInitialAccessToken(db: Kysely<Database>, id: string, by: Actor): Promise<void> {
  const notFound = () => new ClientError('initial_access_token_not_found', `no initial access token ${id}`);
  if (!INITIAL_ACCESS_TOKEN_ID.test(id)) throw notFound();
  await mutate(db, DEFAULT_WRITERS, by, async (trx) => {
    const deleted = await deleteInitialAccessToken(trx, id);
    if (!deleted) throw notFound();
    return { result: undefined, action: 'client.initial_access_token.revoke', target: `initial_access_token:${id}`, details: { uses_left: deleted.usesLeft } };
  });
}

export interface RegistrationDeps {
  db: Kysely<Database>;
  clients: ClientService;
  policy: ClientRegistrationPolicy;
  issuer: string;
}

/**
 * Dynamic client registration (RFC 7591) gated by initial access tokens an administrator issues
 * (expiring, with a count of uses taken atomically with the registration), limited by the
 * configured policy, and client configuration management (RFC 7592) with the registration
 * access token each registered client receives once.
 */
export function createRegistrationService(deps: RegistrationDeps) {
  const { policy } = deps;
  const actorOf = (clientId: string): Actor => ({ actor: `client:${clientId}`, initiatingEntity: 'user' });

  /** What the policy allows a registered client (on top of the rules of every client). */
  function checkPolicy(input: Record<string, unknown>): void {
    for (const field of PRIVILEGED) {
      if (field !== 'client_id' && input[field] !== undefined) throw new ClientError('invalid_client_metadata', `${field}: not available to dynamically registered clients`);
    }
    const grants = (input['grant_types'] as string[] | undefined) ?? [];
    const refused = grants.find((grant) => !policy.grant_types.includes(grant));
    if (refused) throw new ClientError('invalid_client_metadata', `grant_types: ${refused} is not allowed for dynamically registered clients`);
    const method = (input['token_endpoint_auth_method'] as string | undefined) ?? 'client_secret_basic';
    if (!policy.token_endpoint_auth_methods.includes(method as never)) {
      throw new ClientError('invalid_client_metadata', `token_endpoint_auth_method: ${method} is not allowed for dynamically registered clients`);
    }
    const scopes = typeof input['scope'] === 'string' ? input['scope'].split(' ').filter(Boolean) : [];
    const scope = scopes.find((value) => !policy.scopes.includes(value));
    if (scope) throw new ClientError('invalid_client_metadata', `scope: ${scope} is not allowed for dynamically registered clients`);
    const resources = (input['resources'] as string[] | undefined) ?? [];
    const resource = resources.find((value) => !policy.resources.includes(value));
    if (resource) throw new ClientError('invalid_client_metadata', `resources: ${resource} is not allowed for dynamically registered clients`);
    if (policy.https_redirect_uris_only) {
      for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
        const plain = ((input[field] as string[] | undefined) ?? []).find((uri) => !uri.startsWith('https://'));
        if (plain) throw new ClientError('invalid_redirect_uri', `${field}: ${plain}: https only for dynamically registered clients`);
      }
    }
  }

  /** The RFC 7591 §3.2.1 / RFC 7592 §3 answer: the metadata, without Custos' bookkeeping. */
  function response(view: ClientView, extra: Record<string, unknown> = {}) {
    const { status: _status, managed_by: _managed, secrets: _secrets, certificates, created_at, updated_at: _updated, ...metadata } = view;
    const bindings = certificates.filter((c) => c.retired_at === null).map((c) => c.binding);
    return {
      ...metadata,
      ...Object.assign({}, ...bindings),
      client_id_issued_at: Math.floor(Date.parse(created_at) / 1000),
      registration_client_uri: `${deps.issuer}/register/${encodeURIComponent(view.client_id)}`,
      ...extra,
    };
  }

  async function managedClient(registrationToken: string | undefined, clientId: string): Promise<void> {
    const owner = registrationToken ? await clientOfRegistrationToken(deps.db, tokenHash(registrationToken)) : undefined;
    // Unknown client and wrong token answer alike: nothing tells which client ids exist.
    if (owner === undefined || owner !== clientId) throw new RegistrationTokenError('the registration access token is not valid for this client');
  }

  return {
    /** Issues an initial access token (shown once): `uses` registrations until `expiresAt`. */
    issueInitialAccessToken: (input: InitialAccessTokenInput, by: Actor) => issueInitialAccessToken(deps.db, input, by),
    listInitialAccessTokens: (page: { limit: number; cursor?: string }) => listInitialAccessTokenPage(deps.db, page),
    revokeInitialAccessToken: (id: string, by: Actor) => revokeInitialAccessToken(deps.db, id, by),

    /** RFC 7591 §3.1: registers a client; one use of the initial access token is taken in the same transaction. */
    async register(initialAccessToken: string | undefined, input: ClientInput) {
      if (!initialAccessToken) throw new RegistrationTokenError('an initial access token is required (Authorization: Bearer)');
      if (input.client_id !== undefined) throw new ClientError('invalid_client_metadata', 'client_id: assigned by the server');
      checkPolicy(input);
      const registrationToken = newToken();
      let clientId = '';
      const created = await deps.clients.create(input, { actor: 'registration', initiatingEntity: 'user' }, async (trx, id) => {
        clientId = id;
        if (!(await takeInitialAccessToken(trx, tokenHash(initialAccessToken)))) throw new RegistrationTokenError('the initial access token is unknown, used up or expired');
        await insertRegistrationToken(trx, id, tokenHash(registrationToken));
      });
      return response(created.client, {
        ...(created.client_secret ? { client_secret: created.client_secret, client_secret_expires_at: 0 } : {}),
        registration_access_token: registrationToken,
        client_id: clientId,
      });
    },

    /** RFC 7592 §2.1 */
    async read(registrationToken: string | undefined, clientId: string) {
      await managedClient(registrationToken, clientId);
      return response(await deps.clients.get(clientId));
    },

    /** RFC 7592 §2.2: replaces the metadata (within the policy); `client_id` must be the client's own. */
    async update(registrationToken: string | undefined, clientId: string, input: ClientInput) {
      await managedClient(registrationToken, clientId);
      if (input.client_id !== clientId) throw new ClientError('invalid_client_metadata', 'client_id: must be the client\'s own');
      const { client_id: _id, client_secret: _secret, ...metadata } = input as ClientInput & { client_secret?: unknown };
      checkPolicy(metadata);
      return response(await deps.clients.update(clientId, metadata, actorOf(clientId)));
    },

    /** RFC 7592 §2.3: deletes the client (its tokens are cut off). */
    async delete(registrationToken: string | undefined, clientId: string): Promise<void> {
      await managedClient(registrationToken, clientId);
      await deps.clients.delete(clientId, actorOf(clientId), 'deleted by its registration access token');
    },
  };
}

export type RegistrationService = ReturnType<typeof createRegistrationService>;
