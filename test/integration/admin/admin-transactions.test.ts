import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminActor, type MutationWriters } from '../../../src/iam/admin-mutation.js';
import { writeAudit } from '../../../src/iam/audit.repository.js';
import { recordEvent } from '../../../src/events/outbox.repository.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createSessionService } from '../../../src/iam/session.service.js';
import { createUserService } from '../../../src/iam/user.service.js';
import type { AdminRequest } from '../../../src/http/admin-router.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(() => app?.stop());

async function counts() {
  const db = app.custos.db;
  const [audit, outbox, users, roles, assignments, revocations] = await Promise.all(
    (['audit_log', 'event_outbox', 'iam_user', 'iam_role', 'iam_user_role', 'subject_revocation'] as const).map(async (table) =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n),
    ),
  );
  return { audit, outbox, users, roles, assignments, revocations };
}

async function lastRows() {
  const db = app.custos.db;
  // xmin is the inserting transaction's 32-bit id; the outbox's txid is its 64-bit xid8.
  const audit = await db.selectFrom('audit_log').selectAll().select(sql<string>`xmin::text`.as('xid')).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
  const event = await db
    .selectFrom('event_outbox')
    .select(['type', 'subject', 'payload', sql<string>`(txid::text::numeric % 4294967296)::text`.as('xid')])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirstOrThrow();
  return { audit, event };
}

describe('every admin mutation writes one audit row and one outbox row in its transaction', () => {
  it('for each mutation endpoint', async () => {
    const role = await admin.call('POST', '/admin/roles', { body: { name: 'ops' } });
    expect(role.status).toBe(201);
    let before = await counts();
    const steps: Array<{ call: () => Promise<{ status: number; body: any }>; action: string; event: string }> = [];
    let userId = '';
    steps.push({ call: () => admin.call('POST', '/admin/users', { body: { username: 'erin', password: 'long enough password', roles: ['ops'] } }), action: 'user.create', event: 'account-created' });
    steps.push({ call: () => admin.call('PUT', `/admin/users/${userId}/password`, { body: { password: 'another long password' } }), action: 'user.password.set', event: 'credential-changed' });
    steps.push({ call: () => admin.call('DELETE', `/admin/users/${userId}/roles/ops`), action: 'user.role.unassign', event: 'roles-changed' });
    steps.push({ call: () => admin.call('PUT', `/admin/users/${userId}/roles/ops`), action: 'user.role.assign', event: 'roles-changed' });
    steps.push({ call: () => admin.call('DELETE', `/admin/users/${userId}/sessions`), action: 'sessions.revoke', event: 'session-revoked' });
    steps.push({ call: () => admin.call('POST', `/admin/users/${userId}/disable`), action: 'user.disable', event: 'account-disabled' });
    steps.push({ call: () => admin.call('POST', `/admin/users/${userId}/enable`), action: 'user.enable', event: 'account-enabled' });
    for (const step of steps) {
      const response = await step.call();
      expect([step.action, response.status < 300]).toEqual([step.action, true]);
      if (step.action === 'user.create') userId = response.body.id;
      const after = await counts();
      expect([step.action, after.audit - before.audit, after.outbox - before.outbox]).toEqual([step.action, 1, 1]);
      const { audit, event } = await lastRows();
      expect([audit.action, event.type]).toEqual([step.action, step.event]);
      expect(event.subject).toBe(userId);
      expect(event.payload).toMatchObject({ initiatingEntity: 'admin', actor: 'client:admin-cli' });
      expect(audit.target).toBe(`user:${userId}`);
      expect(audit.xid).toBe(event.xid);
      before = after;
    }
    // A new role is assigned to nobody: audited, no event.
    expect((await admin.call('POST', '/admin/roles', { body: { name: 'billing' } })).status).toBe(201);
    const after = await counts();
    expect([after.audit - before.audit, after.outbox - before.outbox]).toEqual([1, 0]);
    expect((await lastRows()).audit).toMatchObject({ action: 'role.create', target: 'role:billing' });
  });

  it('a role assignment that changes nothing (assigned again, removed again) is 200 with the user, audited with changed: false, and records no event', async () => {
    expect((await admin.call('POST', '/admin/roles', { body: { name: 'repeat' } })).status).toBe(201);
    const created = await admin.call('POST', '/admin/users', { body: { username: 'repeat-user', roles: ['repeat'] } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const audited = async () =>
      (await app.custos.db.selectFrom('audit_log').select(['action', 'target', 'details']).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow());

    // The user already has the role: nothing changes, no event.
    let before = await counts();
    const again = await admin.call('PUT', `/admin/users/${id}/roles/repeat`);
    expect([again.status, again.body.roles]).toEqual([200, ['repeat']]);
    expect(await counts()).toEqual({ ...before, audit: before.audit + 1 });
    expect(await audited()).toMatchObject({ action: 'user.role.assign', target: `user:${id}`, details: { role: 'repeat', changed: false } });

    // A real removal records one roles-changed event...
    before = await counts();
    const removed = await admin.call('DELETE', `/admin/users/${id}/roles/repeat`);
    expect([removed.status, removed.body.roles]).toEqual([200, []]);
    expect(await counts()).toEqual({ ...before, audit: before.audit + 1, outbox: before.outbox + 1, assignments: before.assignments - 1 });
    expect((await lastRows()).event).toMatchObject({ type: 'roles-changed', subject: id });

    // ...removing it again records none.
    before = await counts();
    const removedAgain = await admin.call('DELETE', `/admin/users/${id}/roles/repeat`);
    expect([removedAgain.status, removedAgain.body.roles]).toEqual([200, []]);
    expect(await counts()).toEqual({ ...before, audit: before.audit + 1 });
    expect(await audited()).toMatchObject({ action: 'user.role.unassign', details: { role: 'repeat', changed: false } });
  });

  it('a refused mutation (4xx) changes nothing and emits no event; only its admin.refused failure record is written', async () => {
    const before = await counts();
    expect((await admin.call('POST', '/admin/users', { body: { username: 'erin' } })).status).toBe(409);
    expect((await admin.call('POST', '/admin/users', { body: { username: 'frank', roles: ['ghost'] } })).status).toBe(400);
    expect((await admin.call('PUT', '/admin/users/00000000-0000-4000-8000-000000000000/roles/ops')).status).toBe(404);
    expect(await counts()).toEqual({ ...before, audit: before.audit + 3 });
    const refused = await app.custos.db.selectFrom('audit_log').select(['action', 'outcome']).orderBy('id', 'desc').limit(3).execute();
    expect(refused).toEqual(Array(3).fill({ action: 'admin.refused', outcome: 'failure' }));
  });
});

describe('a failure after the IAM write rolls back the change, its audit record and its event', () => {
  const request: AdminRequest = {
    caller: { actor: 'client:test', claims: {} as never },
    clientAddress: '127.0.0.1',
    requestId: 'transaction-test',
  };
  const by = adminActor(request);

  /** Real writers that fail at `where` after the IAM write and (for the event) after the audit row. */
  function failing(where: 'audit' | 'event'): MutationWriters {
    return {
      async writeAudit(trx, record) {
        await writeAudit(trx, record);
        if (where === 'audit') throw new Error('injected failure after the audit write');
      },
      async recordEvent(trx, event) {
        const id = await recordEvent(trx, event);
        if (where === 'event') throw new Error('injected failure after the outbox write');
        return id;
      },
    };
  }

  function services(writers: MutationWriters) {
    const db = app.custos.db;
    const sessions = createSessionService({ db, provider: () => app.custos.provider(), logger: app.custos.logger, writers });
    return {
      users: createUserService({ db, hasher: createPasswordHasher({ cost: { memoryCost: 1024, timeCost: 1, parallelism: 1 } }), sessions, writers }),
      sessions,
    };
  }

  it('for every mutation, whichever write fails', async () => {
    const ok = services({ writeAudit, recordEvent });
    await ok.users.createRole({ name: 'tx-role' }, by);
    const user = await ok.users.create({ username: 'tx-user', password: 'long enough password' }, by);
    for (const where of ['audit', 'event'] as const) {
      const { users, sessions } = services(failing(where));
      const mutations: Array<[string, () => Promise<unknown>, (() => Promise<unknown>)?]> = [
        ['user.create', () => users.create({ username: `tx-new-${where}`, roles: ['tx-role'] }, by)],
        ['user.disable', () => users.disable(user, by)],
        ['user.enable', () => users.enable(user, by), () => ok.users.disable(user, by)],
        ['user.password.set', () => users.setPassword(user, 'a different password', by)],
        ['user.role.assign', () => users.assignRole(user, 'tx-role', by), () => ok.users.enable(user, by)],
        ['user.role.unassign', () => users.unassignRole(user, 'tx-role', by), () => ok.users.assignRole(user, 'tx-role', by)],
        ['sessions.revoke', () => sessions.revokeAll(by, user.id)],
        // role.create writes no event: only the audit failure applies to it.
        ...(where === 'audit' ? [['role.create', () => users.createRole({ name: `tx-other-${where}` }, by)] as [string, () => Promise<unknown>]] : []),
      ];
      for (const [name, run, prepare] of mutations) {
        await prepare?.();
        const before = await counts();
        const stateBefore = await ok.users.get(user.id);
        const hashBefore = await app.custos.db.selectFrom('iam_user').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow();
        await expect(run(), `${name} (${where})`).rejects.toThrow(/injected failure/);
        expect([name, where, await counts()]).toEqual([name, where, before]);
        expect(await ok.users.get(user.id)).toEqual(stateBefore);
        expect(await app.custos.db.selectFrom('iam_user').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow()).toEqual(hashBefore);
      }
      await ok.users.unassignRole(user, 'tx-role', by);
    }
    expect(await app.custos.db.selectFrom('iam_user').select('username').where('username', 'like', 'tx-new-%').execute()).toEqual([]);
  });
});
