import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { AdapterConstructor, AdapterPayload } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { findModel, insertModelsOnce, purgeExpiredModels, upsertModel } from '../../../src/db/oidc-model.repository.js';
import { createKyselyAdapter } from '../../../src/oidc/kysely-adapter.js';
import { createMigratedDatabase } from '../../helpers/database.js';

// Real PostgreSQL: a fresh database for this file, migrated with the real migrations.
let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;
let Adapter: AdapterConstructor;

beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase());
  Adapter = createKyselyAdapter(db);
});
afterAll(() => close?.());

const id = () => randomUUID();

async function rowCount(where: { model?: string; grantId?: string } = {}): Promise<number> {
  let query = db.selectFrom('oidc_model').select(sql<string>`count(*)`.as('n'));
  if (where.model) query = query.where('model', '=', where.model);
  if (where.grantId) query = query.where('grant_id', '=', where.grantId);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

describe('kysely oidc-provider adapter (real PostgreSQL)', () => {
  it('upsert then find returns the stored payload; unknown ids and other models return undefined', async () => {
    const tokens = new Adapter('AccessToken');
    const key = id();
    const payload: AdapterPayload = {
      jti: key,
      kind: 'AccessToken',
      accountId: 'alice',
      clientId: 'web-bff',
      scope: 'openid orders:read',
      grantId: 'g-1',
      iat: 1_700_000_000,
      exp: 1_700_000_300,
      extra: { nested: { list: [1, 'two', null, true] }, unicode: 'żółć ✓' },
    };
    await tokens.upsert(key, payload, 300);
    expect(await tokens.find(key)).toEqual(payload);
    expect(await tokens.find(id())).toBeUndefined();
    // Model names partition the id space.
    expect(await new Adapter('RefreshToken').find(key)).toBeUndefined();
  });

  it('upsert on an existing id overwrites payload and indexed columns', async () => {
    const sessions = new Adapter('Session');
    const key = id();
    await sessions.upsert(key, { jti: key, uid: 'uid-a', accountId: 'alice' }, 60);
    await sessions.upsert(key, { jti: key, uid: 'uid-b', accountId: 'bob' }, 60);
    expect(await sessions.find(key)).toEqual({ jti: key, uid: 'uid-b', accountId: 'bob' });
    expect(await sessions.findByUid('uid-b')).toEqual({ jti: key, uid: 'uid-b', accountId: 'bob' });
    expect(await sessions.findByUid('uid-a')).toBeUndefined();
    const rows = await db.selectFrom('oidc_model').selectAll().where('model', '=', 'Session').where('id', '=', key).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.uid).toBe('uid-b');
  });

  it('stores expires_at from expiresIn, and no expiry when expiresIn is absent', async () => {
    const grants = new Adapter('Grant');
    const withTtl = id();
    const forever = id();
    const before = Date.now();
    await grants.upsert(withTtl, { jti: withTtl }, 3600);
    await grants.upsert(forever, { jti: forever });
    const rows = await db.selectFrom('oidc_model').select(['id', 'expires_at']).where('id', 'in', [withTtl, forever]).execute();
    const byId = new Map(rows.map((row) => [row.id, row.expires_at]));
    const expiresAt = new Date(byId.get(withTtl)!).getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
    expect(byId.get(forever)).toBeNull();
    expect(await grants.find(forever)).toEqual({ jti: forever });
  });

  it('find, findByUid and findByUserCode return undefined once the model has expired', async () => {
    const codes = new Adapter('DeviceCode');
    const key = id();
    await codes.upsert(key, { jti: key, uid: `uid-${key}`, userCode: `UC-${key}`, grantId: 'g-exp' }, 1);
    expect(await codes.find(key)).toBeDefined();
    expect(await codes.findByUid(`uid-${key}`)).toBeDefined();
    expect(await codes.findByUserCode(`UC-${key}`)).toBeDefined();
    await sleep(1100);
    expect(await codes.find(key)).toBeUndefined();
    expect(await codes.findByUid(`uid-${key}`)).toBeUndefined();
    expect(await codes.findByUserCode(`UC-${key}`)).toBeUndefined();
  });

  it('a model stored with an expiry in the past is never found', async () => {
    const key = id();
    await upsertModel(db, 'AuthorizationCode', key, { jti: key }, -60);
    expect(await new Adapter('AuthorizationCode').find(key)).toBeUndefined();
    expect(await findModel(db, 'AuthorizationCode', { id: key })).toBeUndefined();
    expect(await rowCount({ model: 'AuthorizationCode' })).toBeGreaterThan(0);
  });

  it('consume marks the model consumed (epoch seconds) without touching other models', async () => {
    const codes = new Adapter('AuthorizationCode');
    const key = id();
    const other = id();
    await codes.upsert(key, { jti: key, grantId: 'g-c' }, 60);
    await codes.upsert(other, { jti: other, grantId: 'g-c' }, 60);
    expect((await codes.find(key))?.consumed).toBeUndefined();
    const before = Math.floor(Date.now() / 1000);
    await codes.consume(key);
    const found = await codes.find(key);
    expect(found).toMatchObject({ jti: key, grantId: 'g-c' });
    expect(typeof found?.consumed).toBe('number');
    expect(found?.consumed).toBeGreaterThanOrEqual(before - 2);
    expect(found?.consumed).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 2);
    expect((await codes.find(other))?.consumed).toBeUndefined();
    // Same id under another model name is a different row.
    const refresh = new Adapter('RefreshToken');
    await refresh.upsert(key, { jti: key }, 60);
    expect((await refresh.find(key))?.consumed).toBeUndefined();
  });

  it('destroy removes exactly that model instance', async () => {
    const tokens = new Adapter('RefreshToken');
    const key = id();
    const keep = id();
    await tokens.upsert(key, { jti: key }, 60);
    await tokens.upsert(keep, { jti: keep }, 60);
    await new Adapter('AccessToken').upsert(key, { jti: key }, 60);
    await tokens.destroy(key);
    expect(await tokens.find(key)).toBeUndefined();
    expect(await tokens.find(keep)).toEqual({ jti: keep });
    expect(await new Adapter('AccessToken').find(key)).toEqual({ jti: key });
    await expect(tokens.destroy(id())).resolves.toBeUndefined();
  });

  it('revokeByGrantId removes every model of that grant, across model names, and leaves other grants', async () => {
    const grantId = `grant-${id()}`;
    const otherGrant = `grant-${id()}`;
    const stored: Array<[string, string, string]> = [];
    for (const model of ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest']) {
      for (const grant of [grantId, otherGrant]) {
        const key = id();
        await new Adapter(model).upsert(key, { jti: key, grantId: grant }, 60);
        stored.push([model, key, grant]);
      }
    }
    // The Grant itself is keyed by its id, not by grantId.
    await new Adapter('Grant').upsert(grantId, { jti: grantId, accountId: 'alice' }, 60);
    expect(await rowCount({ grantId })).toBe(5);

    await new Adapter('RefreshToken').revokeByGrantId(grantId);

    expect(await rowCount({ grantId })).toBe(0);
    expect(await rowCount({ grantId: otherGrant })).toBe(5);
    for (const [model, key, grant] of stored) {
      const found = await new Adapter(model).find(key);
      if (grant === grantId) expect(found, `${model} ${key}`).toBeUndefined();
      else expect(found, `${model} ${key}`).toEqual({ jti: key, grantId: otherGrant });
    }
    await expect(new Adapter('AccessToken').revokeByGrantId(`grant-${id()}`)).resolves.toBeUndefined();
  });

  it('findByUid and findByUserCode look up by the payload fields within the model', async () => {
    const interactions = new Adapter('Interaction');
    const key = id();
    const uid = `uid-${id()}`;
    await interactions.upsert(key, { jti: key, uid, kind: 'Interaction' }, 60);
    expect(await interactions.findByUid(uid)).toEqual({ jti: key, uid, kind: 'Interaction' });
    expect(await interactions.findByUid(`uid-${id()}`)).toBeUndefined();
    expect(await new Adapter('Session').findByUid(uid)).toBeUndefined();

    const devices = new Adapter('DeviceCode');
    const deviceKey = id();
    const userCode = `ABCD-${id().slice(0, 8)}`;
    await devices.upsert(deviceKey, { jti: deviceKey, userCode }, 60);
    expect(await devices.findByUserCode(userCode)).toEqual({ jti: deviceKey, userCode });
    expect(await devices.findByUserCode('NOPE-NOPE')).toBeUndefined();
    expect(await new Adapter('Interaction').findByUserCode(userCode)).toBeUndefined();
  });

  it('the unique (model, uid) index rejects a second instance with the same uid', async () => {
    const sessions = new Adapter('Session');
    const uid = `uid-${id()}`;
    await sessions.upsert(id(), { uid }, 60);
    await expect(sessions.upsert(id(), { uid }, 60)).rejects.toMatchObject({ code: '23505' });
    // The same uid under another model name is allowed.
    await expect(new Adapter('Interaction').upsert(id(), { uid }, 60)).resolves.toBeUndefined();
  });

  it('the unique (model, user_code) index rejects a second device code with the same user code', async () => {
    const devices = new Adapter('DeviceCode');
    const userCode = `UC-${id()}`;
    await devices.upsert(id(), { userCode }, 60);
    await expect(devices.upsert(id(), { userCode }, 60)).rejects.toMatchObject({ code: '23505' });
  });

  it('purgeExpiredModels removes only expired rows and reports how many', async () => {
    await db.deleteFrom('oidc_model').execute();
    const live = [id(), id()];
    const expired = [id(), id(), id()];
    for (const key of live) await upsertModel(db, 'AccessToken', key, { jti: key }, 3600);
    await upsertModel(db, 'Grant', 'no-expiry', { jti: 'no-expiry' });
    for (const key of expired) await upsertModel(db, 'AccessToken', key, { jti: key }, -5);
    expect(await rowCount()).toBe(6);

    expect(await purgeExpiredModels(db)).toBe(3);

    const remaining = (await db.selectFrom('oidc_model').select('id').execute()).map((row) => row.id).sort();
    expect(remaining).toEqual([...live, 'no-expiry'].sort());
    expect(await purgeExpiredModels(db)).toBe(0);
  });

  it('purgeExpiredModels honours its batch limit', async () => {
    await db.deleteFrom('oidc_model').execute();
    for (let i = 0; i < 5; i += 1) await upsertModel(db, 'AccessToken', id(), {}, -5);
    expect(await purgeExpiredModels(db, { limit: 2 })).toBe(2);
    expect(await rowCount()).toBe(3);
    expect(await purgeExpiredModels(db)).toBe(3);
  });
});

describe('insertModelsOnce (replay detection)', () => {
  it('records each id once: a live id is refused, an id twice in one batch counts once, an expired row is taken over', async () => {
    const [a, b, expired] = [id(), id(), id()];
    await upsertModel(db, 'ReplayDetection', expired, { iss: 'x' }, 1);
    await db.updateTable('oidc_model').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', expired).execute();
    const first = await insertModelsOnce(db, 'ReplayDetection', [
      { id: a, payload: { iss: 'x' }, expiresIn: 60 },
      { id: a, payload: { iss: 'x' }, expiresIn: 60 },
      { id: expired, payload: { iss: 'x' }, expiresIn: 60 },
      { id: 'nul\u0000', payload: { iss: 'x' }, expiresIn: 60 },
    ]);
    expect(first).toEqual([true, false, true, false]);
    expect(await insertModelsOnce(db, 'ReplayDetection', [{ id: a, payload: {}, expiresIn: 60 }, { id: b, payload: {}, expiresIn: 60 }])).toEqual([false, true]);
  });

  it('gives exactly one of many concurrent callers with one id true', async () => {
    const key = id();
    const answers = await Promise.all(Array.from({ length: 12 }, () => insertModelsOnce(db, 'ReplayDetection', [{ id: key, payload: {}, expiresIn: 60 }])));
    expect(answers.flat().filter(Boolean)).toHaveLength(1);
  });
});
