/**
 * Custos as an OpenID SSF 1.0 transmitter with RFC 8935 push delivery (issue 17, second step),
 * driven by a receiver written only with third-party parts: a plain `node:https` server takes the
 * pushes, `jose` verifies each SET against the served JWKS, `undici` makes the management calls
 * with the receiver's client certificate. (The receiver's TLS certificate comes from a throwaway
 * CA made for this file; Custos trusts it through SSF_PUSH_CA_FILE.) The curl walk-through in
 * docs/event-consumers.md ("Push delivery") does what the first tests here do.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SET_EVENT_TYPES } from '../../../src/events/security-event-token.js';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { issueCertificate } from '../../../src/pki/issue.js';
import { sql } from 'kysely';
import { startCustos } from '../../../src/main.js';
import { SSF_PUSH_LOCK_KEY } from '../../../src/ssf/push-deliverer.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { loginForCode, logout, newJar, redeemCode } from '../../helpers/code-flow.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { Receiver } from '../../helpers/ssf-receiver.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const PUSH = 'urn:ietf:rfc:8935';
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
const ALL_EVENTS = [...Object.values(SET_EVENT_TYPES), VERIFICATION, STREAM_UPDATED];
const MAX_FAILURES = 30;
const PAUSED_MAX_EVENTS = 8;


/** A pushed SET as the receiver got it: verified claims, the request's headers. */
interface Received {
  claims: Record<string, any>;
  type: string;
  authorization: string | undefined;
  contentType: string | undefined;
}

/**
 * The receiver's push endpoint: `https://localhost:<port>/events/<inbox>`. Each inbox answers as
 * its `mode` says: `accept` (202 after verifying the SET), `authenticate` (401
 * authentication_failed unless the Authorization header is `expected`), `unavailable` (503 except
 * SSF stream-updated events), and records what it accepted, in arrival order.
 */
class PushReceiver {
  server?: Server;
  port = 0;
  readonly inboxes = new Map<string, { mode: 'accept' | 'authenticate' | 'unavailable'; expected?: string; received: Received[] }>();
  private waiters: Array<() => void> = [];

  constructor(
    private readonly tls: { cert: string; key: string },
    private readonly verify: (set: string) => Promise<Record<string, any>>,
  ) {}

  inbox(name: string, mode: 'accept' | 'authenticate' | 'unavailable' = 'accept', expected?: string) {
    const inbox = { mode, expected, received: [] as Received[] };
    this.inboxes.set(name, inbox);
    return inbox;
  }

  url(name: string): string {
    return `https://localhost:${this.port}/events/${name}`;
  }

  async start(port = 0): Promise<void> {
    this.server = createServer({ cert: this.tls.cert, key: this.tls.key }, (req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private answer(res: ServerResponse, status: number, body?: Record<string, string>): void {
    res.writeHead(status, body ? { 'content-type': 'application/json' } : {});
    res.end(body ? JSON.stringify(body) : undefined);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const inbox = this.inboxes.get(req.url?.replace('/events/', '') ?? '');
    if (req.method !== 'POST' || !inbox) return this.answer(res, 404);
    if (inbox.mode === 'authenticate' && req.headers.authorization !== inbox.expected) {
      return this.answer(res, 401, { err: 'authentication_failed', description: 'wrong credentials' });
    }
    let claims: Record<string, any>;
    try {
      claims = await this.verify(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return this.answer(res, 400, { err: 'invalid_request', description: 'SET did not verify' });
    }
    const type = Object.keys(claims.events)[0]!;
    if (inbox.mode === 'unavailable' && type !== STREAM_UPDATED) return this.answer(res, 503);
    inbox.received.push({ claims, type, authorization: req.headers.authorization, contentType: req.headers['content-type'] });
    this.answer(res, 202);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits until `inbox` holds a SET matching `match` (pushes arrive when the deliverer gets to them). */
  async waitFor(name: string, match: (entry: Received) => boolean, count = 1): Promise<Received[]> {
    for (;;) {
      const found = this.inboxes.get(name)!.received.filter(match);
      if (found.length >= count) return found;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
}

describe('SSF 1.0 transmitter: RFC 8935 push delivery', () => {
  let app: TestApp;
  let config: TempConfigDir;
  let tmp: string;
  let admin: AdminClient;
  let mgmt: Receiver;
  let other: Receiver;
  let receiver: PushReceiver;
  let metadata: Record<string, any>;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'custos-ssf-push-'));
    const ca = await createCertificateAuthority({ commonName: 'Receiver Test CA', validityDays: 2 });
    const leaf = await issueCertificate(ca, { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server', validityDays: 2 });
    await writeFile(path.join(tmp, 'receiver-ca.pem'), ca.certificatePem);
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
    app = await startTestApp({
      configDir: config.dir,
      env: {
        SSF_PUSH_CA_FILE: path.join(tmp, 'receiver-ca.pem'),
        SSF_PUSH_RETRY_MAX_MS: '100',
        SSF_PUSH_MAX_FAILURES: String(MAX_FAILURES),
        SSF_PAUSED_MAX_EVENTS: String(PAUSED_MAX_EVENTS),
        SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '3600',
        SSF_PUSH_ALLOWED_HOSTS: 'localhost,*.receivers.custos.test',
      },
    });
    admin = await adminClient(app);
    mgmt = new Receiver(app, 'ssf-receiver', app.clientAgent('ssf-receiver'));
    other = new Receiver(app, 'ssf-receiver-2', app.clientAgent('ssf-receiver-2'));
    await mgmt.login();
    await other.login('ssf:manage');
    metadata = (await request(`${app.issuer}/.well-known/ssf-configuration`, { dispatcher: mgmt.agent }).then((r) => r.body.json())) as Record<string, any>;
    const served = (await request(metadata.jwks_uri, { dispatcher: mgmt.agent }).then((r) => r.body.json())) as JSONWebKeySet;
    const jwks = createLocalJWKSet(served);
    receiver = new PushReceiver({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, async (set) => {
      const { payload } = await jwtVerify(set, jwks, { issuer: app.issuer, audience: 'ssf-receiver', typ: 'secevent+jwt' });
      return payload as Record<string, any>;
    });
    await receiver.start();
  }, 120_000);
  afterAll(async () => {
    await receiver?.stop();
    await app?.stop();
    await config?.remove();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function createStream(inbox: string, authorization?: string, who = mgmt): Promise<Record<string, any>> {
    const created = await who.call('POST', metadata.configuration_endpoint, {
      events_requested: ALL_EVENTS,
      delivery: { method: PUSH, endpoint_url: receiver.url(inbox), ...(authorization ? { authorization_header: authorization } : {}) },
    });
    expect(created.status).toBe(201);
    return created.body;
  }

  async function createUser(username: string): Promise<string> {
    const response = await admin.call('POST', '/admin/users', { body: { username } });
    expect(response.status).toBe(201);
    return response.body.id as string;
  }

  const about = (userId: string) => (entry: Received) => entry.claims.sub_id?.sub === userId || entry.claims.sub_id?.user?.sub === userId;

  async function streamRow(streamId: string) {
    return app.custos.db.selectFrom('ssf_stream').select(['status', 'status_reason', 'push_failures', 'last_error']).where('stream_id', '=', streamId).executeTakeFirstOrThrow();
  }

  async function waitForStatus(streamId: string, status: string): Promise<Record<string, any>> {
    for (;;) {
      const response = await mgmt.call('GET', `${metadata.status_endpoint}?stream_id=${streamId}`);
      expect(response.status).toBe(200);
      if (response.body.status === status) return response.body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('advertises push, creates a push stream and pushes a verification SET (SSF 1.0 §8.1.4) once per min_verification_interval', async () => {
    expect(metadata.delivery_methods_supported).toEqual([PUSH, 'urn:ietf:rfc:8936']);
    // SSF_PUSH_ALLOWED_HOSTS: pushes go only to the hosts the operator allows.
    for (const url of ['https://169.254.169.254/latest', 'https://127.0.0.1/events', 'https://receivers.custos.test.evil.example/']) {
      const refused = await mgmt.call('POST', metadata.configuration_endpoint, { delivery: { method: PUSH, endpoint_url: url } });
      expect([url, refused.status, refused.body.error]).toEqual([url, 400, 'invalid_request']);
    }
    const allowed = await mgmt.call('POST', metadata.configuration_endpoint, { delivery: { method: PUSH, endpoint_url: 'https://a.receivers.custos.test/' } });
    expect(allowed.status).toBe(201);
    expect((await mgmt.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${allowed.body.stream_id}`)).status).toBe(204);
    const inbox = receiver.inbox('verify', 'authenticate', 'Bearer receiver-secret-v');
    const stream = await createStream('verify', 'Bearer receiver-secret-v');
    // The Authorization header the receiver set is write-only.
    expect(stream).toMatchObject({ aud: 'ssf-receiver', delivery: { method: PUSH, endpoint_url: receiver.url('verify') }, min_verification_interval: 3600 });
    expect(JSON.stringify(stream)).not.toContain('receiver-secret-v');
    expect(JSON.stringify((await mgmt.call('GET', `${metadata.configuration_endpoint}?stream_id=${stream.stream_id}`)).body)).not.toContain('receiver-secret-v');

    // Two verification requests at once: exactly one is taken, the other is told when to come back.
    const [a, b] = await Promise.all([
      mgmt.call('POST', metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'state-1' }),
      mgmt.call('POST', metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'state-2' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([204, 429]);
    const refused = a.status === 429 ? a : b;
    expect(refused.body.error).toBe('too_many_requests');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3500);

    const [verification] = await receiver.waitFor('verify', (entry) => entry.type === VERIFICATION);
    expect(verification!.claims).toMatchObject({ iss: app.issuer, aud: 'ssf-receiver', sub_id: { format: 'opaque', id: stream.stream_id } });
    expect(verification!.claims.events[VERIFICATION].state).toBe(a.status === 204 ? 'state-1' : 'state-2');
    expect(verification!.authorization).toBe('Bearer receiver-secret-v');
    expect(verification!.contentType).toBe('application/secevent+jwt');
    expect(inbox.received).toHaveLength(1);
    // A push stream is not polled.
    expect((await mgmt.call('POST', `${app.issuer}/ssf/poll/${stream.stream_id}`, { returnImmediately: true })).status).toBe(400);
  });

  it('pushes each IAM change as a verified SET with the stream aud, in commit order', async () => {
    const stream = await createStream('changes', 'Bearer receiver-secret-c');
    receiver.inbox('changes', 'authenticate', 'Bearer receiver-secret-c');
    expect((await admin.call('POST', '/admin/roles', { body: { name: 'auditor' } })).status).toBe(201);
    const userId = await createUser('push-alice');
    expect((await admin.call('PUT', `/admin/users/${userId}/roles/auditor`)).status).toBeLessThan(300);
    expect((await admin.call('PUT', `/admin/users/${userId}/password`, { body: { password: 'a long enough passphrase' } })).status).toBeLessThan(300);
    // The user signs in through the code flow and logs out (RP-initiated): one session revoked.
    const jar = newJar();
    const code = await loginForCode(app, jar, 'push-alice', 'a long enough passphrase');
    const tokens = await redeemCode(app, code);
    expect(tokens.status).toBe(200);
    const sid = decodeJwt(tokens.body.access_token as string).sid as string;
    await logout(app, jar);
    expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBeLessThan(300);
    expect((await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} })).status).toBeLessThan(300);
    expect((await admin.call('POST', `/admin/users/${userId}/enable`, { body: {} })).status).toBeLessThan(300);
    const expected = ['account-created', 'roles-changed', 'credential-changed', 'session-revoked', 'session-revoked', 'account-disabled', 'account-enabled'].map(
      (type) => SET_EVENT_TYPES[type as keyof typeof SET_EVENT_TYPES],
    );
    const got = await receiver.waitFor('changes', about(userId), expected.length);
    expect(got.map((entry) => entry.type)).toEqual(expected);
    for (const entry of got) {
      expect(entry.claims.aud).toBe('ssf-receiver');
      expect(entry.claims.txn).toEqual(expect.any(String));
      expect(entry.authorization).toBe('Bearer receiver-secret-c');
    }
    // The logout names its session (RFC 9493 complex subject), the admin revocation the user.
    expect(got[3]!.claims.sub_id).toEqual({ format: 'complex', user: { format: 'iss_sub', iss: app.issuer, sub: userId }, session: { format: 'opaque', id: sid } });
    expect(got[4]!.claims.sub_id).toEqual({ format: 'iss_sub', iss: app.issuer, sub: userId });
    // CAEP Interoperability Profile 1.0: reason_admin is never empty on session-revoked and credential-change.
    for (const index of [2, 3, 4]) expect(got[index]!.claims.events[expected[index]!].reason_admin.en).toBeTruthy();
    expect((await streamRow(stream.stream_id)).status).toBe('enabled');
    const metrics = await request(`${app.issuer}/metrics`, { dispatcher: mgmt.agent }).then((r) => r.body.text());
    expect(metrics).toMatch(new RegExp(`custos_ssf_push_delivered_total\\{stream_id="${stream.stream_id}"\\} [1-9]`));
    expect(metrics).toContain('custos_ssf_push_latency_seconds_count');
  });

  it('keeps pushing after the receiver was down for a while: nothing lost, order kept', async () => {
    const stream = await createStream('down');
    receiver.inbox('down');
    const userId = await createUser('push-bob');
    await receiver.waitFor('down', about(userId));
    const port = receiver.port;
    await receiver.stop();
    expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBeLessThan(300);
    expect((await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} })).status).toBeLessThan(300);
    expect((await admin.call('POST', `/admin/users/${userId}/enable`, { body: {} })).status).toBeLessThan(300);
    // Down until the deliverer has failed at least twice (it backs off and retries).
    while ((await streamRow(stream.stream_id)).push_failures < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await streamRow(stream.stream_id)).last_error).toMatch(/ECONNREFUSED/);
    await receiver.start(port);
    const got = await receiver.waitFor('down', about(userId), 4);
    expect(got.map((entry) => entry.type)).toEqual([SET_EVENT_TYPES['account-created'], SET_EVENT_TYPES['session-revoked'], SET_EVENT_TYPES['account-disabled'], SET_EVENT_TYPES['account-enabled']]);
    expect(new Set(got.map((entry) => entry.claims.jti)).size).toBe(4);
    const row = await streamRow(stream.stream_id);
    expect([row.status, row.push_failures]).toEqual(['enabled', 0]);
  });

  it('a receiver answering 401 authentication_failed pauses the stream with the reason; fixed and enabled, it gets what it missed', async () => {
    receiver.inbox('locked', 'authenticate', 'Bearer right');
    const stream = await createStream('locked', 'Bearer wrong');
    const userId = await createUser('push-carol');
    const status = await waitForStatus(stream.stream_id, 'paused');
    expect(status.reason).toMatch(/HTTP 401 authentication_failed: wrong credentials/);
    expect((await streamRow(stream.stream_id)).push_failures).toBe(1);
    expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBeLessThan(300);
    // The transmitter's own status change is audited.
    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'details']).where('target', '=', stream.stream_id).where('action', '=', 'ssf.stream.status').execute();
    expect(audit.map((row) => row.actor)).toEqual(['system:ssf']);

    const fixed = await mgmt.call('PATCH', metadata.configuration_endpoint, { stream_id: stream.stream_id, delivery: { method: PUSH, endpoint_url: receiver.url('locked'), authorization_header: 'Bearer right' } });
    expect(fixed.status).toBe(200);
    expect((await mgmt.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'enabled' })).status).toBe(200);
    const got = await receiver.waitFor('locked', about(userId), 2);
    expect(got.map((entry) => entry.type)).toEqual([SET_EVENT_TYPES['account-created'], SET_EVENT_TYPES['session-revoked']]);
  });

  it('a push stream whose receiver made no management call for inactivity_timeout is paused and told by a stream-updated SET', async () => {
    receiver.inbox('inactive');
    const stream = await createStream('inactive');
    expect(stream.inactivity_timeout).toBe(2_592_000);
    // Pushes are no receiver activity (SSF 1.0 §8.1.1): only management calls naming the stream are.
    await sql`update ssf_stream set last_activity_at = now() - interval '31 days' where stream_id = ${stream.stream_id}`.execute(app.custos.db);
    const [updated] = await receiver.waitFor('inactive', (entry) => entry.type === STREAM_UPDATED);
    expect(updated!.claims.events[STREAM_UPDATED]).toEqual({ status: 'paused', reason: expect.stringMatching(/^inactivity_timeout: no receiver activity for 2592000 s/) });
    expect(updated!.claims.sub_id).toEqual({ format: 'opaque', id: stream.stream_id });
    const status = await mgmt.call('GET', `${metadata.status_endpoint}?stream_id=${stream.stream_id}`);
    expect(status.body).toEqual({ stream_id: stream.stream_id, status: 'paused', reason: updated!.claims.events[STREAM_UPDATED].reason });
  });

  it('a receiver failing with 503 is retried, then paused; it is told by a stream-updated SET (SSF 1.0 §8.1.5)', async () => {
    const inbox = receiver.inbox('unavailable', 'unavailable');
    const stream = await createStream('unavailable');
    await createUser('push-dave');
    const status = await waitForStatus(stream.stream_id, 'paused');
    expect(status.reason).toMatch(new RegExp(`push failing ${MAX_FAILURES} times in a row \\(last: HTTP 503\\)`));
    const [updated] = await receiver.waitFor('unavailable', (entry) => entry.type === STREAM_UPDATED);
    expect(updated!.claims.events[STREAM_UPDATED]).toEqual({ status: 'paused', reason: status.reason });
    expect(updated!.claims.sub_id).toEqual({ format: 'opaque', id: stream.stream_id });
    expect(inbox.received.every((entry) => entry.type === STREAM_UPDATED)).toBe(true);
    const metrics = await request(`${app.issuer}/metrics`, { dispatcher: mgmt.agent }).then((r) => r.body.text());
    expect(metrics).toContain(`custos_ssf_push_failures_total{stream_id="${stream.stream_id}",kind="transient"} ${MAX_FAILURES}`);
  });

  it('verifies the receiver’s TLS certificate: an untrusted one is a failure, never a delivery', async () => {
    const stranger = await createCertificateAuthority({ commonName: 'Stranger CA', validityDays: 2 });
    const leaf = await issueCertificate(stranger, { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server', validityDays: 2 });
    const impostor = new PushReceiver({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, async (set) => decodeJwt(set) as Record<string, any>);
    await impostor.start();
    try {
      impostor.inbox('x');
      const created = await mgmt.call('POST', metadata.configuration_endpoint, {
        events_requested: ALL_EVENTS,
        delivery: { method: PUSH, endpoint_url: impostor.url('x') },
      });
      await createUser('push-erin');
      while ((await streamRow(created.body.stream_id)).push_failures < 1) await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await streamRow(created.body.stream_id)).last_error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|self.signed|unable to verify/i);
      expect(impostor.inboxes.get('x')!.received).toEqual([]);
      await mgmt.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${created.body.stream_id}`);
    } finally {
      await impostor.stop();
    }
  });

  it('paused by the receiver: events are kept and pushed on resume; over the bound the stream is disabled', async () => {
    const stream = await createStream('paused');
    receiver.inbox('paused');
    const userId = await createUser('push-frank');
    await receiver.waitFor('paused', about(userId));
    expect((await mgmt.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' })).body).toEqual({
      stream_id: stream.stream_id,
      status: 'paused',
      reason: 'maintenance',
    });
    expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBeLessThan(300);
    expect((await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} })).status).toBeLessThan(300);
    expect((await mgmt.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'enabled' })).status).toBe(200);
    const got = await receiver.waitFor('paused', about(userId), 3);
    expect(got.map((entry) => entry.type)).toEqual([SET_EVENT_TYPES['account-created'], SET_EVENT_TYPES['session-revoked'], SET_EVENT_TYPES['account-disabled']]);

    // Paused again, more than SSF_PAUSED_MAX_EVENTS happen: the transmitter disables the stream and says so.
    expect((await mgmt.call('POST', metadata.status_endpoint, { stream_id: stream.stream_id, status: 'paused' })).status).toBe(200);
    for (let i = 0; i <= PAUSED_MAX_EVENTS; i++) await createUser(`push-bulk-${i}`);
    const status = await waitForStatus(stream.stream_id, 'disabled');
    expect(status.reason).toBe(`held more than ${PAUSED_MAX_EVENTS} events while paused; disabled, its events were dropped`);
    const [updated] = await receiver.waitFor('paused', (entry) => entry.type === STREAM_UPDATED);
    expect(updated!.claims.events[STREAM_UPDATED]).toEqual({ status: 'disabled', reason: status.reason });
  });

  it('one receiver cannot read, change, verify or poll another receiver’s push stream', async () => {
    receiver.inbox('theirs');
    const theirs = await createStream('theirs', 'Bearer theirs-secret', mgmt);
    const id = theirs.stream_id;
    expect((await other.call('GET', `${metadata.configuration_endpoint}?stream_id=${id}`)).status).toBe(404);
    expect((await other.call('GET', metadata.configuration_endpoint)).body).toEqual([]);
    expect((await other.call('PATCH', metadata.configuration_endpoint, { stream_id: id, delivery: { method: PUSH, endpoint_url: 'https://attacker.example/' } })).status).toBe(404);
    expect((await other.call('POST', metadata.status_endpoint, { stream_id: id, status: 'paused' })).status).toBe(404);
    expect((await other.call('GET', `${metadata.status_endpoint}?stream_id=${id}`)).status).toBe(404);
    expect((await other.call('POST', metadata.verification_endpoint, { stream_id: id })).status).toBe(404);
    expect((await other.call('POST', `${app.issuer}/ssf/poll/${id}`, { returnImmediately: true })).status).toBe(404);
    expect((await other.call('DELETE', `${metadata.configuration_endpoint}?stream_id=${id}`)).status).toBe(404);
    const unchanged = await mgmt.call('GET', `${metadata.configuration_endpoint}?stream_id=${id}`);
    expect(unchanged.body.delivery.endpoint_url).toBe(receiver.url('theirs'));
    expect((await streamRow(id)).status).toBe('enabled');
  });

  it('two instances on one database: one deliverer holds the lock; when its connection dies one takes over; each SET once', async () => {
    const second = await startCustos({
      env: {
        NODE_ENV: 'test',
        PORT: '0',
        ADMIN_PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: app.databaseUrl,
        KEYS_DIR: app.keysDir,
        CONFIG_DIR: config.dir,
        LOG_LEVEL: 'warn',
        // Instances of one deployment share the issuer (the test's own would be its random port).
        ISSUER: app.issuer,
        SSF_PUSH_CA_FILE: path.join(tmp, 'receiver-ca.pem'),
        SSF_PUSH_RETRY_MAX_MS: '100',
      },
      cwd: ROOT,
    });
    const holders = async () =>
      (
        await sql<{ pid: number }>`select pid from pg_locks
           where locktype = 'advisory' and granted and ((classid::bigint << 32) | objid::bigint) = ${SSF_PUSH_LOCK_KEY.toString()}::bigint`.execute(app.custos.db)
      ).rows.map((row) => row.pid);
    try {
      receiver.inbox('cluster');
      await createStream('cluster');
      const userId = await createUser('push-grace');
      await receiver.waitFor('cluster', about(userId));
      const before = await holders();
      expect(before).toHaveLength(1);
      // The active deliverer's connection dies (as when its process is killed): the lock is free.
      await sql`select pg_terminate_backend(${before[0]!})`.execute(app.custos.db);
      let after = await holders();
      while (after.length === 0 || after[0] === before[0]) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        after = await holders();
      }
      expect(after).toHaveLength(1);
      expect((await admin.call('DELETE', `/admin/users/${userId}/sessions`)).status).toBeLessThan(300);
      expect((await admin.call('POST', `/admin/users/${userId}/disable`, { body: {} })).status).toBeLessThan(300);
      const got = await receiver.waitFor('cluster', about(userId), 3);
      expect(got.map((entry) => entry.type)).toEqual([SET_EVENT_TYPES['account-created'], SET_EVENT_TYPES['session-revoked'], SET_EVENT_TYPES['account-disabled']]);
      expect(new Set(got.map((entry) => entry.claims.jti)).size).toBe(3);
      expect(await holders()).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });

  it('docs/event-consumers.md "Push delivery": the curl walk-through runs as written', async () => {
    receiver.inbox('curl', 'authenticate', 'Bearer receiver-secret');
    const lines = readFileSync(path.join(ROOT, 'docs/event-consumers.md'), 'utf8').split('\n');
    const start = lines.findIndex((line, i) => line === '```sh' && lines[i - 1] === '<!-- tested by: test/integration/ssf/push.test.ts -->');
    expect(start).toBeGreaterThan(0);
    const script = lines
      .slice(start + 1, lines.indexOf('```', start + 1))
      .join('\n')
      .replaceAll('https://receiver.example.com/ssf/events', receiver.url('curl'))
      .replaceAll('https://localhost:8443', app.issuer)
      .replaceAll('keys/dev/', `${app.keysDir}/`);
    const { stdout } = await promisify(execFile)('sh', ['-e', '-c', script], { cwd: ROOT });
    const status = JSON.parse(stdout.trim());
    expect(status).toEqual({ stream_id: expect.any(String), status: 'enabled' });
    const [verification] = await receiver.waitFor('curl', (entry) => entry.type === VERIFICATION);
    expect(verification!.claims.events[VERIFICATION]).toEqual({ state: 'hello' });
    expect(verification!.claims.sub_id).toEqual({ format: 'opaque', id: status.stream_id });
    expect(verification!.authorization).toBe('Bearer receiver-secret');
  });

  it('a missing or non-PEM SSF_PUSH_CA_FILE stops start-up with one line naming it', async () => {
    const env = { NODE_ENV: 'test', PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', DATABASE_URL: app.databaseUrl, KEYS_DIR: app.keysDir, CONFIG_DIR: config.dir };
    await expect(startCustos({ env: { ...env, SSF_PUSH_CA_FILE: path.join(tmp, 'nowhere.pem') }, cwd: tmp })).rejects.toThrow(
      /^Invalid configuration:\n {2}- SSF_PUSH_CA_FILE: file not found \(.*nowhere\.pem\)$/,
    );
    await writeFile(path.join(tmp, 'garbage.pem'), 'not a certificate');
    await expect(startCustos({ env: { ...env, SSF_PUSH_CA_FILE: path.join(tmp, 'garbage.pem') }, cwd: tmp })).rejects.toThrow(
      /^Invalid configuration:\n {2}- SSF_PUSH_CA_FILE: must be a readable file of PEM CA certificates \(.*garbage\.pem\)$/,
    );
  });
});

describe('SSF push: at most SSF_PUSH_CONCURRENCY streams pushed to at once', () => {
  const LIMIT = 2;
  let app: TestApp;
  let tmp: string;
  let server: Server;
  let port = 0;
  /** Pushes the receiver holds open (answered when the test releases them). */
  const held: ServerResponse[] = [];
  let delivered = 0;
  let most = 0;
  let arrived: (() => void) | undefined;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'custos-ssf-concurrency-'));
    const ca = await createCertificateAuthority({ commonName: 'Receiver Test CA', validityDays: 2 });
    const leaf = await issueCertificate(ca, { commonName: 'localhost', dns: ['localhost'], usage: 'server', validityDays: 2 });
    await writeFile(path.join(tmp, 'receiver-ca.pem'), ca.certificatePem);
    server = createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, (req, res) => {
      req.resume();
      req.on('end', () => {
        held.push(res);
        most = Math.max(most, held.length);
        arrived?.();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    app = await startTestApp({ env: { SSF_PUSH_CA_FILE: path.join(tmp, 'receiver-ca.pem'), SSF_PUSH_CONCURRENCY: String(LIMIT) } });
  }, 120_000);
  afterAll(async () => {
    await app?.stop();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await rm(tmp, { recursive: true, force: true });
  });

  const release = () => {
    for (const res of held.splice(0)) {
      res.writeHead(202);
      res.end();
      delivered += 1;
    }
  };

  it('five streams due at once: never more than two pushes in flight, every SET delivered', async () => {
    const mgmt = new Receiver(app, 'ssf-receiver', app.clientAgent('ssf-receiver'));
    await mgmt.login();
    const streams: string[] = [];
    for (let i = 0; i < 6; i++) {
      const created = await mgmt.call('POST', `${app.issuer}/ssf/streams`, {
        delivery: { method: PUSH, endpoint_url: `https://localhost:${port}/events/${i}` },
        events_requested: [VERIFICATION],
      });
      expect(created.status).toBe(201);
      streams.push(created.body.stream_id);
      // Paused: the verification SET waits until the stream is enabled.
      expect((await mgmt.call('POST', `${app.issuer}/ssf/status`, { stream_id: created.body.stream_id, status: 'paused' })).status).toBe(200);
      expect((await mgmt.call('POST', `${app.issuer}/ssf/verify`, { stream_id: created.body.stream_id })).status).toBe(204);
    }
    // The first enabled stream's push is held: the deliverer's round waits on it while the other
    // five are enabled, so the next round finds five streams due at once.
    const first = new Promise<void>((resolve) => (arrived = resolve));
    await mgmt.call('POST', `${app.issuer}/ssf/status`, { stream_id: streams[0], status: 'enabled' });
    await first;
    for (const id of streams.slice(1)) expect((await mgmt.call('POST', `${app.issuer}/ssf/status`, { stream_id: id, status: 'enabled' })).status).toBe(200);
    most = 0;
    release();
    while (delivered < streams.length) {
      if (held.length === 0) await new Promise<void>((resolve) => (arrived = resolve));
      // Give the deliverer room to start more than it may (it must not), then answer what is held.
      await new Promise((resolve) => setTimeout(resolve, 300));
      release();
    }
    expect(most).toBe(LIMIT);
    // Each SET leaves the queue once its 202 is read.
    const pending = () => app.custos.db.selectFrom('ssf_pending_set').select('jti').where('stream_id', 'in', streams).execute();
    for (let i = 0; i < 100 && (await pending()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await pending()).toEqual([]);
  });
});
