import type { Kysely } from 'kysely';
import { errors, type Adapter, type AdapterConstructor, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../db/database.js';
import type { GrantRevocationHooks } from './grant-revocation.js';
import {
  consumeModel,
  consumeOnce,
  destroyModel,
  findModel,
  revokeModelsByGrantId,
  UnstorableValueError,
  upsertModel,
} from '../db/oidc-model.repository.js';

/** Where the `Client` model's metadata comes from (src/clients/client-registry.ts). */
export interface ClientModelSource {
  metadata(clientId: string): object | undefined;
}

/** Models consumed at most once, with oidc-provider's own `invalid_grant` details. */
const ONCE: Record<string, { replay: string; missing: string }> = {
  AuthorizationCode: { replay: 'authorization code already consumed', missing: 'authorization code not found' },
  RefreshToken: { replay: 'refresh token already used', missing: 'refresh token not found' },
};

/**
 * Builds the oidc-provider adapter class bound to one database: every model
 * (Session, Grant, AuthorizationCode, RefreshToken, ...) lives in `oidc_model`. Codes and refresh
 * tokens are consumed atomically: of concurrent redemptions one wins, the others are replays
 * that end the grant (`hooks.replayed`); every grant oidc-provider ends goes through
 * `hooks.revokeByGrantId`.
 */
export function createKyselyAdapter(db: Kysely<Database>, hooks?: GrantRevocationHooks, clients?: ClientModelSource): AdapterConstructor {
  return class KyselyAdapter implements Adapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      try {
        await upsertModel(db, this.model, id, payload as Record<string, unknown>, expiresIn);
      } catch (error) {
        // Only request input puts NUL into a payload (a `state`, a `nonce`...): the request is bad.
        if (error instanceof UnstorableValueError) throw new errors.InvalidRequest('request parameters must not contain NUL characters');
        throw error;
      }
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      // oidc-provider's `Client` model (lib/models/client.js) asks on every lookup; the client
      // registry answers from memory, so the token path reads no client from the database.
      if (clients && this.model === 'Client') return clients.metadata(id) as AdapterPayload | undefined;
      return (await findModel(db, this.model, { id })) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await findModel(db, this.model, { uid })) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await findModel(db, this.model, { user_code: userCode })) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      const details = ONCE[this.model];
      if (!details) {
        await consumeModel(db, this.model, id);
        return;
      }
      const outcome = await consumeOnce(db, this.model, id);
      if (outcome.state === 'consumed') return;
      if (outcome.state === 'already-consumed' && outcome.grantId) await hooks?.replayed(this.model as 'AuthorizationCode' | 'RefreshToken', outcome.grantId);
      throw new errors.InvalidGrant(outcome.state === 'missing' ? details.missing : details.replay);
    }

    async destroy(id: string): Promise<void> {
      await destroyModel(db, this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      if (hooks) await hooks.revokeByGrantId(grantId);
      else await revokeModelsByGrantId(db, grantId);
    }
  };
}
