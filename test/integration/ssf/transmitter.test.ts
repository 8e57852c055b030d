/**
 * Custos as an OpenID Shared Signals Framework 1.0 transmitter (issue 17, first step): metadata,
 * stream management, verification and RFC 8936 poll delivery from the event outbox, driven by a
 * receiver written only with third-party parts (undici with the receiver's client certificate,
 * jose against the served JWKS). The curl walk-through in docs/event-consumers.md ("Shared
 * Signals (SSF 1.0)") does what this file does.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { sql } from 'kysely';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prunePublished, recordEvent } from '../../../src/events/outbox.repository.js';
import { SET_EVENT_TYPES } from '../../../src/events/security-event-token.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { Receiver, type Response } from '../../helpers/ssf-receiver.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
const DISABLED = SET_EVENT_TYPES['account-disabled'];
const CREATED = SET_EVENT_TYPES['account-created'];
const SESSION_REVOKED = SET_EVENT_TYPES['session-revoked'];

describe('SSF 1.0 transmitter: streams and RFC 8936 poll delivery', () => {
  let app: TestApp;
  let config: TempConfigDir;
  let admin: AdminClient;
  let receiver: Receiver;
  let other: Receiver;
  let metadata: Record<string, any>;
  let jwks: ReturnType<typeof createLocalJWKSet>;

  beforeAll(async () => {
    config = await configDirWithClients([
      {
        client_id: 'ssf-receiver-2',
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_san_dns: 'ssf-receiver-2.clients.custos.test',
        tls_client_certificate_bound_access_tokens: true,
        grant_types: ['client_credentials'],
        scope: 'ssf:manage',
        resources: ['urn:custos:ssf'],
        default_resource: 'urn:custos:ssf',
      },
    ]);
    app = await startTestApp({ configDir: config.dir });
    admin = await adminClient(app);
    receiver = new Receiver(app, 'ssf-receiver', app.clientAgent('ssf-receiver'));
    other = new Receiver(app, 'ssf-receiver-2', app.clientAgent('ssf-receiver-2'));
    await receiver.login();
    // The other receiver keeps the scope's first name, `ssf:manage` (an alias of `ssf.manage`).
    await other.login('ssf:manage');
    const served = await receiver.call('GET', `${app.issuer}/ssf/jwks`, undefined, { token: null });
    jwks = createLocalJWKSet(served.body as JSONWebKeySet);
  }, 120_000);
  afterAll(async () => {
    await app?.stop();
    await config?.remove();
  });

  async function verifySet(set: string, audience: string) {
    const { payload, protectedHeader } = await jwtVerify(set, jwks, { issuer: app.issuer, audience, typ: 'secevent+jwt' });
    // CAEP Interoperability Profile 1.0 §2.6: RS256.
    expect(protectedHeader.alg).toBe('RS256');
    return payload as Record<string, any>;
  }

  async function createUser(username: string, email?: string): Promise<string> {
    const response = await admin.call('POST', '/admin/users', { body: { username, ...(email ? { email } : {}) } });
    expect(response.status).toBe(201);
    return response.body.id as string;
  }

  async function poll(stream: Record<string, any>, body: Record<string, unknown> = { returnImmediately: true }, who = receiver): Promise<Response> {
    return who.call('POST', stream.delivery.endpoint_url, body);
  }

  /** Polls until a SET of `type` about `userId` arrives (events are taken once their transaction is older than every running one). */
  async function pollFor(stream: Record<string, any>, type: string, userId: string): Promise<{ jti: string; claims: Record<string, any> }> {
    for (let i = 0; i < 40; i++) {
      const response = await poll(stream);
      expect(response.status).toBe(200);
      for (const [jti, set] of Object.entries(response.body.sets as Record<string, string>)) {
        const claims = decodeJwt(set) as Record<string, any>;
        if (claims.events[type] && (claims.sub_id?.sub === userId || claims.sub_id?.user?.sub === userId)) return { jti, claims: await verifySet(set, stream.aud) };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no ${type} SET for ${userId}`);
  }

  async function drain(stream: Record<string, any>): Promise<void> {
    for (;;) {
      const response = await poll(stream);
      const jtis = Object.keys(response.body.sets);
      if (jtis.length === 0) return;
      await poll(stream, { returnImmediately: true, ack: jtis, maxEvents: 0 });
    }
  }

  it('serves the transmitter metadata (SSF 1.0 §7.1) from the configured issuer', async () => {
    const response = await receiver.call('GET', `${app.issuer}/.well-known/ssf-configuration`, undefined, { token: null });
    expect(response.status).toBe(200);
    metadata = response.body;
    expect(metadata).toEqual({
      spec_version: '1_0',
      issuer: app.issuer,
      jwks_uri: `${app.issuer}/ssf/jwks`,
      delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
      configuration_endpoint: `${app.issuer}/ssf/streams`,
      status_endpoint: `${app.issuer}/ssf/status`,
      add_subject_endpoint: `${app.issuer}/ssf/subjects:add`,
      remove_subject_endpoint: `${app.issuer}/ssf/subjects:remove`,
      verification_endpoint: `${app.issuer}/ssf/verify`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
      default_subjects: 'ALL',
    });
  });

  it('refuses calls without an ssf:manage token, and a token used without its certificate', async () => {
    expect((await receiver.call('GET', metadata.configuration_endpoint, undefined, { token: null })).status).toBe(401);
    const adminToken = await receiver.call('GET', metadata.configuration_endpoint, undefined, { token: admin.token });
    expect(adminToken.status).toBe(401);
    const noCert = await request(metadata.configuration_endpoint, { headers: { authorization: `Bearer ${receiver.token}` }, dispatcher: app.agent() });
    expect(noCert.statusCode).toBe(401);
    expect(((await noCert.body.json()) as { error: string }).error).toBe('certificate_required');
  });

  it('CAEP Interoperability Profile §2.6: SETs are RS256 with a 2048-bit key from the SSF jwks_uri; /jwks (tokens) is unchanged', async () => {
    const ssfKeys = (await receiver.call('GET', metadata.jwks_uri, undefined, { token: null })).body as JSONWebKeySet;
    expect(ssfKeys.keys.length).toBeGreaterThanOrEqual(2);
    for (const key of ssfKeys.keys) {
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(Buffer.from(key.n as string, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
      expect(key).not.toHaveProperty('d');
    }
    const tokenKeys = (await receiver.call('GET', `${app.issuer}/jwks`, undefined, { token: null })).body as JSONWebKeySet;
    expect(tokenKeys.keys.every((key) => key.kty === 'EC' && key.alg === 'ES256')).toBe(true);
    // The current key signs: a verification SET names its kid.
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [VERIFICATION] })).body;
    expect((await receiver.call('POST', metadata.verification_endpoint, { stream_id: stream.stream_id })).status).toBe(204);
    const [set] = Object.values((await poll(stream)).body.sets as Record<string, string>);
    const header = JSON.parse(Buffer.from(set!.split('.')[0]!, 'base64url').toString()) as { kid: string; alg: string };
    expect(header.alg).toBe('RS256');
    expect(header.kid).toBe(ssfKeys.keys[0]!.kid);
    await verifySet(set!, 'ssf-receiver');
    expect((await receiver.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).status).toBe(204);
  });

  it('CAEP Interoperability Profile §2.7.3: ssf.read reads configuration and status and polls; changes need ssf.manage (or its alias ssf:manage)', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [VERIFICATION] })).body;
    const reader = new Receiver(app, 'ssf-receiver', receiver.agent);
    await reader.login('ssf.read');
    expect((await reader.call('GET', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).body).toEqual(stream);
    expect((await reader.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`)).body).toEqual({ stream_id: stream.stream_id, status: 'enabled' });
    expect((await poll(stream, { returnImmediately: true }, reader)).status).toBe(200);
    const refusals = [
      await reader.call('POST', metadata.configuration_endpoint, { events_requested: [VERIFICATION] }),
      await reader.call('PATCH', metadata.configuration_endpoint, { stream_id: stream.stream_id, description: 'x' }),
      await reader.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`),
      await reader.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'paused' }),
      await reader.call('POST', metadata.verification_endpoint, { stream_id: stream.stream_id }),
      await reader.call('POST', metadata.add_subject_endpoint, { stream_id: stream.stream_id, subject: { format: 'opaque', id: 'x' } }),
    ];
    for (const refused of refusals) {
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('insufficient_scope');
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="custos-ssf", error="insufficient_scope", scope="ssf.manage"');
    }
    // Nothing changed; the alias still manages (the other receiver's token has only `ssf:manage`).
    expect((await receiver.call('GET', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).body).toEqual(stream);
    const theirs = await other.call('POST', metadata.configuration_endpoint, { events_requested: [VERIFICATION] });
    expect(theirs.status).toBe(201);
    expect((await other.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${theirs.body.stream_id}`)).status).toBe(204);
    expect((await receiver.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).status).toBe(204);
  });

  it('creates a poll stream, delivers an IAM change as a SET, redelivers until acknowledged', async () => {
    const created = await receiver.call('POST', metadata.configuration_endpoint, {
      delivery: { method: 'urn:ietf:rfc:8936' },
      events_requested: [DISABLED, SESSION_REVOKED, VERIFICATION, 'urn:example:unknown'],
      description: 'test stream',
    });
    expect(created.status).toBe(201);
    const stream = created.body;
    expect(stream).toMatchObject({
      iss: app.issuer,
      aud: 'ssf-receiver',
      events_requested: [DISABLED, SESSION_REVOKED, VERIFICATION, 'urn:example:unknown'],
      events_delivered: [DISABLED, SESSION_REVOKED, VERIFICATION],
      delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${app.issuer}/ssf/poll/${stream.stream_id}` },
      description: 'test stream',
    });
    expect(stream.events_supported).toEqual(expect.arrayContaining([...Object.values(SET_EVENT_TYPES), VERIFICATION]));
    expect((await receiver.call('GET', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).body).toEqual(stream);

    const userId = await createUser('ssf-alice');
    expect((await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} })).status).toBeLessThan(300);
    const { jti, claims } = await pollFor(stream, DISABLED, userId);
    expect(claims).toMatchObject({ iss: app.issuer, aud: 'ssf-receiver', sub_id: { format: 'iss_sub', iss: app.issuer, sub: userId } });
    expect(typeof claims.txn).toBe('string');
    expect(claims.events[DISABLED]).toMatchObject({ initiating_entity: 'admin' });
    // account-created was not requested: never delivered.
    const again = await poll(stream);
    expect(again.body.sets[jti]).toBeDefined();
    expect(Object.values(again.body.sets as Record<string, string>).some((set) => decodeJwt(set).events && CREATED in (decodeJwt(set).events as object))).toBe(false);

    const acked = await poll(stream, { returnImmediately: true, ack: Object.keys(again.body.sets) });
    expect(acked.status).toBe(200);
    expect(acked.body).toEqual({ sets: {}, moreAvailable: false });
    const stored = await app.custos.db.selectFrom('ssf_pending_set').select('jti').where('stream_id', '=', stream.stream_id).execute();
    expect(stored).toEqual([]);

    // Stream management is audited with the receiver as actor.
    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'action', 'target']).where('action', 'like', 'ssf.%').execute();
    expect(audit).toContainEqual({ actor: 'client:ssf-receiver', action: 'ssf.stream.create', target: stream.stream_id });
  });

  it('queues a verification event (SSF 1.0 §8.1.4) and long polling returns when it arrives', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [VERIFICATION] })).body;
    expect((await receiver.call('POST', metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'abc123' })).status).toBe(204);
    const response = await poll(stream, { maxEvents: 10 });
    const sets = Object.values(response.body.sets as Record<string, string>);
    expect(sets).toHaveLength(1);
    const claims = await verifySet(sets[0]!, 'ssf-receiver');
    expect(claims.events).toEqual({ [VERIFICATION]: { state: 'abc123' } });
    expect(claims.sub_id).toEqual({ format: 'opaque', id: stream.stream_id });
  });

  it('a long poll (no returnImmediately) waits and returns as soon as an event commits', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [DISABLED] })).body;
    const userId = await createUser('ssf-long-poll');
    const started = Date.now();
    const waiting = poll(stream, { maxEvents: 5 });
    await new Promise((resolve) => setTimeout(resolve, 700));
    await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} });
    const response = await waiting;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(5000);
    const sets = Object.values(response.body.sets as Record<string, string>);
    expect(sets).toHaveLength(1);
    expect((await verifySet(sets[0]!, 'ssf-receiver')).sub_id.sub).toBe(userId);
  });

  it('delivers one user’s events in commit order where transaction ids say otherwise', async () => {
    const enabled = SET_EVENT_TYPES['account-enabled'];
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [DISABLED, enabled] })).body;
    const { db } = app.custos;
    // A takes its transaction id first, B commits alice's first event while A runs, then A writes
    // alice's second: (txid, id) order puts A's alice row before B's, commit order after it.
    await db.transaction().execute(async (a) => {
      await recordEvent(a, { type: 'account-enabled', userId: 'ssf-order-bob', initiatingEntity: 'admin' });
      await db.transaction().execute((b) => recordEvent(b, { type: 'account-disabled', userId: 'ssf-order-alice', initiatingEntity: 'admin' }));
      await recordEvent(a, { type: 'account-enabled', userId: 'ssf-order-alice', initiatingEntity: 'admin' });
    });
    const seen: string[] = [];
    for (let i = 0; i < 50 && seen.length < 3; i++) {
      const response = await poll(stream, { returnImmediately: true, maxEvents: 1 });
      const [entry] = Object.entries(response.body.sets as Record<string, string>);
      if (!entry) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const claims = await verifySet(entry[1], 'ssf-receiver');
      seen.push(`${claims.sub_id.sub} ${Object.keys(claims.events)[0] === DISABLED ? 'disabled' : 'enabled'}`);
      await poll(stream, { returnImmediately: true, maxEvents: 0, ack: [entry[0]] });
    }
    expect(seen).toEqual(['ssf-order-bob enabled', 'ssf-order-alice disabled', 'ssf-order-alice enabled']);
  });

  it('keeps events while paused and delivers them once enabled again', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [DISABLED] })).body;
    const paused = await receiver.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' });
    expect(paused.body).toEqual({ stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' });
    expect((await receiver.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`)).body).toEqual(paused.body);
    const userId = await createUser('ssf-paused');
    await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await poll(stream)).body).toEqual({ sets: {}, moreAvailable: false });
    expect((await receiver.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'enabled' })).status).toBe(200);
    const { claims } = await pollFor(stream, DISABLED, userId);
    expect(claims.sub_id.sub).toBe(userId);
  });

  it('inactivity_timeout (SSF 1.0 §8.1.1): advertised; receiver calls restart it; an inactive stream is paused with a reason, one paused too long is disabled', async () => {
    const db = app.custos.db;
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [DISABLED] })).body;
    expect(stream.inactivity_timeout).toBe(2_592_000);
    const age = async () =>
      Number((await sql<{ age: string }>`select extract(epoch from now() - last_activity_at) as age from ssf_stream where stream_id = ${stream.stream_id}`.execute(db)).rows[0]!.age);
    const backdate = (column: 'last_activity_at' | 'status_changed_at', days: number) =>
      sql`update ssf_stream set ${sql.ref(column)} = now() - make_interval(days => ${days}) where stream_id = ${stream.stream_id}`.execute(db);
    const statusRow = () => db.selectFrom('ssf_stream').select(['status', 'status_reason']).where('stream_id', '=', stream.stream_id).executeTakeFirstOrThrow();
    /** Waits (reading the database, not the API: a call would count as activity) for the transmitter's housekeeping. */
    const untilStatus = async (status: string) => {
      for (let i = 0; i < 150 && (await statusRow()).status !== status; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      return statusRow();
    };

    // A management call naming the stream, and a poll, each restart the timeout.
    await backdate('last_activity_at', 20);
    expect(await age()).toBeGreaterThan(86_400);
    expect((await receiver.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`)).status).toBe(200);
    expect(await age()).toBeLessThan(60);
    await backdate('last_activity_at', 20);
    expect((await poll(stream)).status).toBe(200);
    expect(await age()).toBeLessThan(60);
    // Another receiver's call naming it (404) is no activity of this stream's receiver.
    await backdate('last_activity_at', 20);
    expect((await other.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`)).status).toBe(404);
    expect(await age()).toBeGreaterThan(86_400);

    // 31 days without activity: paused by the transmitter, with the reason; audited as system:ssf.
    await backdate('last_activity_at', 31);
    const paused = await untilStatus('paused');
    expect(paused.status).toBe('paused');
    expect(paused.status_reason).toMatch(/^inactivity_timeout: no receiver activity for 2592000 s/);
    const audit = await db.selectFrom('audit_log').select(['actor', 'details']).where('action', '=', 'ssf.stream.status').where('target', '=', stream.stream_id).execute();
    expect(audit).toContainEqual({ actor: 'system:ssf', details: expect.objectContaining({ from: 'enabled', to: 'paused' }) });
    // Events committed while paused are kept.
    const userId = await createUser('ssf-inactive');
    await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} });

    // Paused longer than SSF_PAUSED_MAX_SECONDS (default 14 days): disabled, what it held dropped.
    await backdate('status_changed_at', 15);
    const disabled = await untilStatus('disabled');
    expect(disabled.status).toBe('disabled');
    expect(disabled.status_reason).toMatch(/^paused for more than 1209600 s; disabled/);
    expect(await db.selectFrom('ssf_pending_set').select('jti').where('stream_id', '=', stream.stream_id).execute()).toEqual([]);
    const status = await receiver.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`);
    expect(status.body).toEqual({ stream_id: stream.stream_id, status: 'disabled', reason: disabled.status_reason });
  });

  it('with default_subjects NONE delivers only events of added subjects', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [DISABLED], default_subjects: 'NONE' })).body;
    const watched = await createUser('ssf-watched', 'watched@example.test');
    const ignored = await createUser('ssf-ignored');
    const added = await receiver.call('POST', metadata.add_subject_endpoint, { stream_id: stream.stream_id, subject: { format: 'email', email: 'watched@example.test' } });
    expect(added.status).toBe(200);
    await admin.call('POST', `/admin/users/${ignored}/disable`, { body: {} });
    await admin.call('POST', `/admin/users/${watched}/disable`, { body: {} });
    await pollFor(stream, DISABLED, watched);
    const all = Object.values((await poll(stream)).body.sets as Record<string, string>).map((set) => (decodeJwt(set) as any).sub_id.sub);
    expect(all).not.toContain(ignored);
    await drain(stream);
    const removed = await receiver.call('POST', metadata.remove_subject_endpoint, { stream_id: stream.stream_id, subject: { format: 'email', email: 'watched@example.test' } });
    expect(removed.status).toBe(204);
  });

  it('a receiver cannot see or change another receiver’s stream; it can have several', async () => {
    const mine = (await receiver.call('POST', metadata.configuration_endpoint, {})).body;
    const theirs = (await other.call('POST', metadata.configuration_endpoint, {})).body;
    expect(theirs.aud).toBe('ssf-receiver-2');
    const id = theirs.stream_id;
    expect((await receiver.call('GET', `${metadata.configuration_endpoint}?stream_id=${id}`)).status).toBe(404);
    expect((await receiver.call('PATCH', metadata.configuration_endpoint, { stream_id: id, description: 'x' })).status).toBe(404);
    expect((await receiver.call('PUT', metadata.configuration_endpoint, { stream_id: id })).status).toBe(404);
    expect((await receiver.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${id}`)).status).toBe(404);
    expect((await receiver.call('POST', metadata.status_endpoint, { stream_id: id, status: 'disabled' })).status).toBe(404);
    expect((await receiver.call('POST', metadata.verification_endpoint, { stream_id: id })).status).toBe(404);
    expect((await receiver.call('POST', metadata.add_subject_endpoint, { stream_id: id, subject: { format: 'opaque', id: 'x' } })).status).toBe(404);
    expect((await poll(theirs)).status).toBe(404);
    const listed = (await receiver.call('GET', metadata.configuration_endpoint)).body as Array<{ stream_id: string }>;
    expect(listed.length).toBeGreaterThan(1);
    expect(listed.map((s) => s.stream_id)).toContain(mine.stream_id);
    expect(listed.map((s) => s.stream_id)).not.toContain(id);
    expect((await other.call('GET', metadata.configuration_endpoint)).body).toEqual([theirs]);

    const patched = await receiver.call('PATCH', metadata.configuration_endpoint, { stream_id: mine.stream_id, description: 'patched', events_requested: [CREATED] });
    expect(patched.body).toMatchObject({ description: 'patched', events_delivered: [CREATED] });
    const replaced = await receiver.call('PUT', metadata.configuration_endpoint, { stream_id: mine.stream_id, events_requested: [DISABLED] });
    expect(replaced.body).toMatchObject({ events_delivered: [DISABLED] });
    expect(replaced.body.description).toBeUndefined();
    expect((await receiver.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${mine.stream_id}`)).status).toBe(204);
    expect((await receiver.call('GET', `${metadata.configuration_endpoint}?stream_id=${mine.stream_id}`)).status).toBe(404);
  });

  it('bad input is a 400 JSON error, never a 500', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, {})).body;
    const cases: Array<[string, string, unknown, string?]> = [
      ['POST', metadata.configuration_endpoint, { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'http://example.test/' } }],
      ['POST', metadata.configuration_endpoint, { delivery: { method: 'urn:ietf:rfc:8935' } }],
      ['POST', metadata.configuration_endpoint, { delivery: { method: 'urn:example:carrier-pigeon' } }],
      ['POST', metadata.configuration_endpoint, { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://example.test/', authorization_header: 'Bearer x\r\nX: y' } }],
      ['POST', metadata.configuration_endpoint, { events_requested: 'not-a-list' }],
      ['POST', metadata.configuration_endpoint, undefined, '{"events_requested": ['],
      ['PATCH', metadata.configuration_endpoint, { description: 'no stream id' }],
      ['POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'sleeping' }],
      ['POST', metadata.add_subject_endpoint, { stream_id: stream.stream_id, subject: { format: 'phone_number' } }],
      ['POST', metadata.add_subject_endpoint, { stream_id: stream.stream_id }],
      ['POST', stream.delivery.endpoint_url, { maxEvents: -1 }],
      ['POST', stream.delivery.endpoint_url, { ack: 'x' }],
      ['DELETE', metadata.configuration_endpoint, undefined],
      ['GET', metadata.status_endpoint, undefined],
    ];
    for (const [method, url, body, raw] of cases) {
      const response = await receiver.call(method, url, body, raw ? { raw } : {});
      expect([method, url, response.status]).toEqual([method, url, 400]);
      expect(typeof response.body.error).toBe('string');
    }
    expect((await receiver.call('GET', `${metadata.configuration_endpoint}?stream_id=not-a-uuid`)).status).toBe(404);
    expect((await receiver.call('POST', `${app.issuer}/ssf/poll/%E0%A4%A`, {})).status).toBe(404);
    expect((await receiver.call('POST', `${app.issuer}/ssf/poll/${stream.stream_id}/x`, {})).status).toBe(404);
    expect((await receiver.call('GET', stream.delivery.endpoint_url)).status).toBe(405);
  });

  it('the outbox prune keeps rows a stream has not taken yet (paused), and prunes them once taken', async () => {
    const stream = (await receiver.call('POST', metadata.configuration_endpoint, { events_requested: [CREATED] })).body;
    // Only this stream holds rows back: the others of this file are disabled (they drop events).
    await app.custos.db.updateTable('ssf_stream').set({ status: 'disabled' }).where('stream_id', '<>', stream.stream_id).execute();
    await receiver.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'paused' });
    const userId = await createUser('ssf-pruned');
    const row = () => app.custos.db.selectFrom('event_outbox').select('id').where('subject', '=', userId).execute();
    // As if the relay had published everything long ago.
    await app.custos.db.updateTable('event_outbox').set({ published_at: new Date(Date.now() - 3600_000) }).execute();
    await prunePublished(app.custos.db, 1000);
    expect(await row()).toHaveLength(1);
    await receiver.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'enabled' });
    await pollFor(stream, CREATED, userId);
    await prunePublished(app.custos.db, 1000);
    expect(await row()).toEqual([]);
    // Taken means kept for the receiver: the SET is still pending after the row is gone.
    expect(Object.keys((await poll(stream)).body.sets)).toHaveLength(1);
  });

  it('docs/event-consumers.md "Shared Signals (SSF 1.0)": the curl walk-through runs as written', async () => {
    const lines = readFileSync(path.join(ROOT, 'docs/event-consumers.md'), 'utf8').split('\n');
    const start = lines.findIndex((line, i) => line === '```sh' && lines[i - 1] === '<!-- tested by: test/integration/ssf/transmitter.test.ts -->');
    expect(start).toBeGreaterThan(0);
    const script = lines
      .slice(start + 1, lines.indexOf('```', start + 1))
      .join('\n')
      .replaceAll('https://localhost:8443', app.issuer)
      .replaceAll('keys/dev/', `${app.keysDir}/`);
    const { stdout } = await promisify(execFile)('sh', ['-e', '-c', script], { cwd: ROOT });
    const [meta, polled] = stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(meta).toMatchObject({ spec_version: '1_0', issuer: app.issuer });
    const sets = Object.values(polled.sets as Record<string, string>);
    expect(sets).toHaveLength(1);
    expect((await verifySet(sets[0]!, 'ssf-receiver')).events).toEqual({ [VERIFICATION]: { state: 'hello' } });
  });
});

describe('SSF long polls and shutdown', () => {
  it('a waiting long poll answers at once when Custos stops, so it does not hold the shutdown', async () => {
    const app = await startTestApp();
    try {
      const receiver = new Receiver(app, 'ssf-receiver', app.clientAgent('ssf-receiver'));
      await receiver.login();
      const stream = (await receiver.call('POST', `${app.issuer}/ssf/streams`, {})).body;
      const waiting = receiver.call('POST', stream.delivery.endpoint_url, {});
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      // Custos itself, not the test's HTTP agents (closing those waits for the poll).
      const stopping = app.custos.stop();
      const response = await waiting;
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ sets: {}, moreAvailable: false });
      await stopping;
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await app.stop();
    }
  }, 60_000);
});
