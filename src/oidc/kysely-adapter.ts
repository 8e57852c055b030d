import type { Kysely } from 'kysely';
import { errors, type Adapter, type AdapterConstructor, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../db/database.js';
import {
  consumeModel,
  destroyModel,
  findModel,
  revokeModelsByGrantId,
  UnstorableValueError,
  upsertModel,
} from '../db/oidc-model.repository.js';

/**
 * Builds the oidc-provider adapter class bound to one database: every model
 * (Session, Grant, AuthorizationCode, RefreshToken, ...) lives in `oidc_model`.
 */
export function createKyselyAdapter(db: Kysely<Database>): AdapterConstructor {
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
      return (await findModel(db, this.model, { id })) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await findModel(db, this.model, { uid })) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await findModel(db, this.model, { user_code: userCode })) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      await consumeModel(db, this.model, id);
    }

    async destroy(id: string): Promise<void> {
      await destroyModel(db, this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await revokeModelsByGrantId(db, grantId);
    }
  };
}
