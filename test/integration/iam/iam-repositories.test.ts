import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { recordEvent } from '../../../src/events/outbox.repository.js';
import { listAudit, writeAudit } from '../../../src/iam/audit.repository.js';
import { assignRole, insertRole, listRoles, rolesOfUser, unassignRole } from '../../../src/iam/role.repository.js';
import {
  findLoginCandidate,
  findUserById,
  findUserByUsername,
  insertUser,
  listUsers,
  updateDisabled,
  updatePasswordHash,
} from '../../../src/iam/user.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase());
});
afterAll(() => close?.());

describe('users', () => {
  it('usernames are unique case-insensitively and looked up in any case', async () => {
    const alice = await insertUser(db, { username: 'Alice', email: 'alice@example.test', passwordHash: '$argon2id$x' });
    expect(alice).toMatchObject({ username: 'Alice', email: 'alice@example.test', disabled: false, roles: [] });
    expect(alice.passwordChangedAt).toBeInstanceOf(Date);
    await expect(insertUser(db, { username: 'alice' })).rejects.toMatchObject({ code: 'username_taken', status: 409 });
    expect((await findUserByUsername(db, 'ALICE'))?.id).toBe(alice.id);
    expect((await findLoginCandidate(db, 'alice'))?.passwordHash).toBe('$argon2id$x');
    expect(await findUserByUsername(db, 'al\u0000ice')).toBeUndefined();
    expect(await findUserById(db, 'not-a-uuid')).toBeUndefined();
    await expect(insertUser(db, { username: '' })).rejects.toMatchObject({ code: 'invalid_username' });
  });

  it('password and disabled updates; unknown ids are user_not_found', async () => {
    const bob = await insertUser(db, { username: 'bob' });
    expect(bob.passwordChangedAt).toBeNull();
    await updatePasswordHash(db, bob.id, '$argon2id$y');
    expect((await findLoginCandidate(db, 'bob'))?.passwordHash).toBe('$argon2id$y');
    expect(await updateDisabled(db, bob.id, true)).toBe(true);
    expect(await updateDisabled(db, bob.id, true)).toBe(false);
    expect((await findUserById(db, bob.id))?.disabled).toBe(true);
    await expect(updatePasswordHash(db, '00000000-0000-4000-8000-000000000000', 'h')).rejects.toMatchObject({ code: 'user_not_found' });
    await expect(updateDisabled(db, 'nope', true)).rejects.toMatchObject({ code: 'user_not_found' });
  });

  it('lists users by keyset pages', async () => {
    for (const name of ['u1', 'u2', 'u3']) await insertUser(db, { username: name });
    const all = await listUsers(db, { limit: 100 });
    const first = await listUsers(db, { limit: 2 });
    const second = await listUsers(db, { limit: 100, after: first.at(-1)!.id });
    expect([...first, ...second].map((u) => u.id)).toEqual(all.map((u) => u.id));
  });
});

describe('roles', () => {
  it('creates, assigns and removes roles with stable errors', async () => {
    await insertRole(db, 'orders-reader', 'reads orders');
    await expect(insertRole(db, 'orders-reader')).rejects.toMatchObject({ code: 'role_exists', status: 409 });
    await expect(insertRole(db, 'Bad Role')).rejects.toMatchObject({ code: 'invalid_role' });
    const carol = await insertUser(db, { username: 'carol' });
    expect(await assignRole(db, carol.id, 'orders-reader')).toBe(true);
    expect(await assignRole(db, carol.id, 'orders-reader')).toBe(false);
    expect((await findUserById(db, carol.id))?.roles).toEqual(['orders-reader']);
    await expect(assignRole(db, carol.id, 'missing')).rejects.toMatchObject({ code: 'role_not_found', status: 404 });
    await expect(assignRole(db, '00000000-0000-4000-8000-000000000000', 'orders-reader')).rejects.toMatchObject({ code: 'user_not_found' });
    expect(await unassignRole(db, carol.id, 'orders-reader')).toBe(true);
    expect(await rolesOfUser(db, carol.id)).toEqual([]);
    expect((await listRoles(db, { limit: 10 })).map((r) => r.name)).toContain('orders-reader');
  });
});

describe('audit log and outbox', () => {
  it('filters audit records and pages newest first', async () => {
    await writeAudit(db, { actor: 'anonymous', action: 'login.failure', target: 'user:x', outcome: 'failure', clientAddress: '127.0.0.1', requestId: 'r1' });
    await writeAudit(db, { actor: 'cli', action: 'user.create', target: 'user:y', outcome: 'success', details: { username: 'y' } });
    const failures = await listAudit(db, { action: 'login.failure' }, { limit: 10 });
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ actor: 'anonymous', target: 'user:x', outcome: 'failure', clientAddress: '127.0.0.1', requestId: 'r1' });
    const newest = await listAudit(db, {}, { limit: 1 });
    expect(newest[0]?.action).toBe('user.create');
    expect(await listAudit(db, {}, { limit: 10, before: newest[0]!.id })).toHaveLength(1);
  });

  it('an event recorded in a transaction that rolls back leaves nothing; a committed one stays', async () => {
    const user = await insertUser(db, { username: 'dave' });
    await expect(
      db.transaction().execute(async (trx) => {
        await recordEvent(trx, { type: 'account-disabled', userId: user.id, initiatingEntity: 'admin' });
        await writeAudit(trx, { actor: 'cli', action: 'user.disable', target: `user:${user.id}`, outcome: 'success' });
        throw new Error('forced');
      }),
    ).rejects.toThrow('forced');
    expect(await db.selectFrom('event_outbox').selectAll().execute()).toEqual([]);
    expect(await listAudit(db, { action: 'user.disable' }, { limit: 10 })).toEqual([]);

    const eventId = await db.transaction().execute((trx) => recordEvent(trx, { type: 'roles-changed', userId: user.id, roles: ['a'], initiatingEntity: 'admin' }));
    const rows = await db.selectFrom('event_outbox').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event_id: eventId, type: 'roles-changed', subject: user.id, sequence_id: null, published_at: null });
    expect(rows[0]!.payload).toMatchObject({ roles: ['a'] });
  });
});
