/**
 * Custos as an OpenID Shared Signals Framework 1.0 receiver (issue 17): transmitters written here
 * sign CAEP and RISC Security Event Tokens with their own ES256 keys — one serves its JWKS over real
 * TLS (its own CA, `tls_ca_file`), one is configured with an inline JWKS and an Authorization
 * header — and push them (RFC 8935) to `/ssf/receiver/events`; a third (an MDM) serves them on an
 * RFC 8936 poll endpoint over that TLS, which Custos polls. Custos applies them through the
 * revocation room and the user repositories, with audit records and its own outbound events; a
 * forged, replayed (also in parallel), foreign, mis-addressed, unsigned or stale SET changes nothing
 * and gets the RFC 8935 error. The operator section in docs/operators.md ("Receiving Shared
 * Signals") describes the configuration this file writes.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:https';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationHeaderDigest, DEMO_TRANSMITTER_AUTHORIZATION, ssfReceiverSchema } from '../../../src/config/ssf-receiver.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { pruneReceivedSets } from '../../../src/ssf/receiver/received-set.repository.js';
import { createSsfReceiverModule } from '../../../src/ssf/receiver/receiver-module.js';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { issueCertificate } from '../../../src/pki/issue.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { loginForCode, newJar } from '../../helpers/code-flow.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { isActive } from '../../helpers/user-tokens.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const AUDIENCE = 'https://custos.test/ssf-receiver';
const IDP = 'https://idp.corp.test';
const EDR = 'https://edr.vendor.test';
const UNREACHABLE = 'https://untrusted-tls.test';
const MDM = 'https://mdm.vendor.test';
const MDM_POLL_AUTHORIZATION = 'Bearer custos-at-mdm-0123456789abcdefghij';
const EDR_AUTHORIZATION = 'Bearer edr-push-secret-0123456789abcdefghijklmnop';
const PASSWORD = 'correct horse battery staple';

interface Signer {
  issuer: string;
  kid: string;
  key: CryptoKey;
  jwk: JWK;
}

async function signer(issuer: string, kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { issuer, kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

let app: TestApp;
let configDir: string;
let idp: Signer;
let edr: Signer;
let edrPrevious: Signer;
let mdm: Signer;
let stranger: Signer;
let jwksServer: Server;
let untrustedServer: Server;
let jwksFetches = 0;
/**
 * A user per revoking case: a revocation cuts off every token of the user issued up to its second
 * (JWT `iat` has one-second resolution), so a token minted for the same user right after one would
 * look revoked whatever the next SET did. `erin` is never revoked (refusals must leave her tokens alive).
 */
const users: Record<'alice' | 'bob' | 'carol' | 'dave' | 'erin' | 'frank' | 'grace' | 'henry' | 'ivan', string> = { alice: '', bob: '', carol: '', dave: '', erin: '', frank: '', grace: '', henry: '', ivan: '' };

/**
 * The MDM's RFC 8936 poll endpoint: SETs wait in `pollQueue` until Custos acknowledges them or
 * reports an error for them (`setErrs`); `settled` emits each answer by jti.
 */
const pollQueue = new Map<string, string>();
const pollAnswers = new EventEmitter();
let pollRefusedAuth = 0;

function servePoll(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method !== 'POST' || req.headers.authorization !== MDM_POLL_AUTHORIZATION) {
      pollRefusedAuth += 1;
      res.statusCode = 401;
      res.end();
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { maxEvents: number; ack?: string[]; setErrs?: Record<string, { err: string; description: string }> };
    for (const jti of body.ack ?? []) {
      pollQueue.delete(jti);
      pollAnswers.emit(jti, { ack: true });
    }
    for (const [jti, error] of Object.entries(body.setErrs ?? {})) {
      pollQueue.delete(jti);
      pollAnswers.emit(jti, error);
    }
    const sets = Object.fromEntries([...pollQueue].slice(0, body.maxEvents));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ sets, moreAvailable: pollQueue.size > body.maxEvents }));
  });
}

/** Queues a SET at the MDM's poll endpoint and resolves with Custos's answer (an ack or a setErr). */
function pollDeliver(jti: string, set: string): Promise<{ ack: true } | { err: string; description: string }> {
  const answer = new Promise<{ ack: true } | { err: string; description: string }>((resolve) => pollAnswers.once(jti, resolve));
  pollQueue.set(jti, set);
  return answer;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

beforeAll(async () => {
  idp = await signer(IDP, 'idp-1');
  edr = await signer(EDR, 'edr-1');
  edrPrevious = await signer(EDR, 'edr-0');
  mdm = await signer(MDM, 'mdm-1');
  stranger = await signer(IDP, 'idp-1'); // same issuer and kid as the IdP, another key: a forger
  // The IdP's JWKS over real TLS, certificate from a CA of its own (the receiver trusts it via tls_ca_file).
  const ca = await createCertificateAuthority({ commonName: 'Corp IdP test CA', validityDays: 2 });
  const serverCert = await issueCertificate(ca, { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server', validityDays: 2 });
  jwksServer = createServer({ cert: serverCert.certificatePem, key: serverCert.privateKeyPem }, (req, res) => {
    if (req.url === '/poll') return servePoll(req, res);
    jwksFetches += 1;
    res.setHeader('content-type', 'application/jwk-set+json');
    res.end(JSON.stringify({ keys: [idp.jwk] }));
  });
  // A JWKS server whose certificate no configured CA vouches for.
  const otherCa = await createCertificateAuthority({ commonName: 'Unknown CA', validityDays: 2 });
  const otherCert = await issueCertificate(otherCa, { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server', validityDays: 2 });
  untrustedServer = createServer({ cert: otherCert.certificatePem, key: otherCert.privateKeyPem }, (_req, res) => res.end(JSON.stringify({ keys: [] })));
  const [jwksPort, untrustedPort] = await Promise.all([listen(jwksServer), listen(untrustedServer)]);

  configDir = await mkdtemp(path.join(tmpdir(), 'custos-receiver-config-'));
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  const caFile = path.join(configDir, 'idp-ca.pem');
  await writeFile(caFile, ca.certificatePem);
  const pollAuthorizationFile = path.join(configDir, 'mdm-poll-authorization');
  await writeFile(pollAuthorizationFile, `${MDM_POLL_AUTHORIZATION}\n`);
  await writeFile(
    path.join(configDir, 'ssf-receiver.json'),
    JSON.stringify({
      ssf_receiver: {
        transmitters: [
          {
            id: 'corp-idp',
            issuer: IDP,
            jwks_uri: `https://localhost:${jwksPort}/jwks`,
            tls_ca_file: caFile,
            audience: AUDIENCE,
            accepted_events: [`${CAEP}session-revoked`, `${CAEP}credential-change`, `${CAEP}token-claims-change`, `${RISC}account-disabled`, `${RISC}account-enabled`, `${RISC}account-purged`],
            subject_formats: ['iss_sub', 'email', 'opaque'],
            username_issuer: IDP,
          },
          {
            id: 'edr',
            issuer: EDR,
            jwks: { keys: [edrPrevious.jwk, edr.jwk] },
            audience: AUDIENCE,
            accepted_events: [`${RISC}credential-compromise`, `${CAEP}device-compliance-change`],
            subject_formats: ['email'],
            authorization_header_sha256: authorizationHeaderDigest(EDR_AUTHORIZATION),
          },
          {
            id: 'mdm',
            issuer: MDM,
            jwks: { keys: [mdm.jwk] },
            tls_ca_file: caFile,
            audience: AUDIENCE,
            accepted_events: [`${CAEP}device-compliance-change`],
            subject_formats: ['email'],
            poll: { endpoint_url: `https://localhost:${jwksPort}/poll`, authorization_file: pollAuthorizationFile, max_events: 10, interval_seconds: 1 },
          },
          {
            id: 'untrusted-tls',
            issuer: UNREACHABLE,
            jwks_uri: `https://localhost:${untrustedPort}/jwks`,
            audience: AUDIENCE,
            accepted_events: [`${CAEP}session-revoked`],
            subject_formats: ['opaque'],
          },
        ],
      },
    }),
  );
  app = await startTestApp({ configDir });
  const service = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  const by = { actor: 'cli', initiatingEntity: 'admin' as const };
  for (const name of Object.keys(users) as Array<keyof typeof users>) {
    users[name] = (await service.create({ username: name, email: `${name}@corp.test`, password: PASSWORD }, by)).id;
  }
});

afterAll(async () => {
  await app?.stop();
  jwksServer?.close();
  untrustedServer?.close();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

interface SetOptions {
  issuer?: string;
  aud?: string | string[];
  iat?: number | null;
  jti?: string;
  typ?: string;
  extra?: Record<string, unknown>;
  events?: Record<string, unknown>;
}

/** A SET signed by `by` (RFC 8417, SSF 1.0 §4): one event, `sub_id`, no `exp`. */
function sign(by: Signer, eventType: string, subId: Record<string, unknown>, payload: Record<string, unknown> = {}, options: SetOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    iss: options.issuer ?? by.issuer,
    aud: options.aud ?? AUDIENCE,
    jti: options.jti ?? randomUUID(),
    sub_id: subId,
    events: options.events ?? { [eventType]: { event_timestamp: Math.floor(Date.now() / 1000), ...payload } },
    ...options.extra,
  };
  if (options.iat !== null) claims['iat'] = options.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...(by.kid ? { kid: by.kid } : {}), typ: options.typ ?? 'secevent+jwt' }).sign(by.key);
}

/** An unsigned (`alg: none`) or HMAC-signed token with the IdP's claims. */
function unsecured(alg: 'none' | 'HS256', claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const head = `${encode({ alg, typ: 'secevent+jwt', kid: 'idp-1' })}.${encode(claims)}`;
  if (alg === 'none') return `${head}.`;
  return `${head}.${createHmac('sha256', 'guessed-secret').update(head).digest('base64url')}`;
}

async function push(token: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  const response = await request(`${app.issuer}/ssf/receiver/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json', ...headers },
    body: token,
    dispatcher: app.agent(),
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, body: text ? JSON.parse(text) : undefined };
}

const issSub = (userId: string) => ({ format: 'iss_sub', iss: app.issuer, sub: userId });
const email = (name: string) => ({ format: 'email', email: `${name}@corp.test` });

async function tokenOf(userId: string): Promise<string> {
  return mintUserAccessToken(app, { sub: userId });
}

const active = (token: string) => isActive(app, token, { client: 'orders-api' });

async function isDisabled(userId: string): Promise<boolean> {
  const row = await app.custos.db.selectFrom('iam_user').select('disabled').where('id', '=', userId).executeTakeFirstOrThrow();
  return row.disabled;
}

/** Counts of what a SET may change: received-SET records, audit rows, outbox events, disabled users, cut-offs. */
async function stateCounts() {
  const db = app.custos.db;
  const count = async (table: 'ssf_received_set' | 'audit_log' | 'event_outbox' | 'subject_revocation') =>
    Number((await db.selectFrom(table).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow()).n);
  const disabled = Number((await db.selectFrom('iam_user').select(sql<string>`count(*)`.as('n')).where('disabled', '=', true).executeTakeFirstOrThrow()).n);
  return { received: await count('ssf_received_set'), audit: await count('audit_log'), events: await count('event_outbox'), cutOffs: await count('subject_revocation'), disabled };
}

async function eventsOf(userId: string): Promise<Array<{ type: string; payload: any }>> {
  const rows = await app.custos.db.selectFrom('event_outbox').select(['type', 'payload']).where('subject', '=', userId).orderBy('id').execute();
  return rows.map((row) => ({ type: row.type, payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload }));
}

async function auditOf(jti: string) {
  return app.custos.db
    .selectFrom('audit_log')
    .select(['actor', 'action', 'target', 'details'])
    .where(sql<boolean>`details->'ssf'->>'jti' = ${jti}`)
    .execute();
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const value = (await app.custos.metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('applying CAEP and RISC events', () => {
  it('CAEP session-revoked (iss_sub of a Custos user): the user’s access token introspects inactive, audited, republished as session-revoked', async () => {
    const token = await tokenOf(users.alice);
    const other = await tokenOf(users.bob);
    expect(await active(token)).toBe(true);
    const jti = randomUUID();
    const response = await push(await sign(idp, `${CAEP}session-revoked`, issSub(users.alice), { initiating_entity: 'policy' }, { jti }));
    expect(response.status, response.text).toBe(202);
    expect(response.text).toBe('');
    expect(await active(token)).toBe(false);
    expect(await active(other)).toBe(true);
    expect(await auditOf(jti)).toEqual([expect.objectContaining({ actor: 'ssf:corp-idp', action: 'sessions.revoke', target: `user:${users.alice}` })]);
    const events = await eventsOf(users.alice);
    expect(events.at(-1)).toMatchObject({ type: 'session-revoked', payload: { actor: 'ssf:corp-idp', initiatingEntity: 'policy' } });
    expect(await metric('custos_ssf_receiver_sets_total', { transmitter: 'corp-idp', outcome: 'applied' })).toBeGreaterThanOrEqual(1);
  });

  it('iss_sub of the transmitter’s username_issuer names the user by username (RFC 8265 comparison)', async () => {
    const token = await tokenOf(users.ivan);
    expect(await active(token)).toBe(true);
    const response = await push(await sign(idp, `${CAEP}session-revoked`, { format: 'iss_sub', iss: IDP, sub: 'IVAN' }));
    expect(response.status, response.text).toBe(202);
    expect(await active(token)).toBe(false);
  });

  it('RISC account-disabled (email) blocks login and revokes; account-enabled lets the user in again', async () => {
    expect(await loginForCode(app, newJar(), 'bob', PASSWORD)).toEqual(expect.any(String));
    const token = await tokenOf(users.bob);
    const disabled = await push(await sign(idp, `${RISC}account-disabled`, email('bob'), { reason: 'hijacking' }));
    expect(disabled.status, disabled.text).toBe(202);
    expect(await isDisabled(users.bob)).toBe(true);
    expect(await active(token)).toBe(false);
    await expect(loginForCode(app, newJar(), 'bob', PASSWORD)).rejects.toThrow(/login/);
    expect((await eventsOf(users.bob)).at(-1)).toMatchObject({ type: 'account-disabled', payload: { actor: 'ssf:corp-idp' } });

    const enabled = await push(await sign(idp, `${RISC}account-enabled`, { format: 'complex', user: email('bob') }));
    expect(enabled.status, enabled.text).toBe(202);
    expect(await isDisabled(users.bob)).toBe(false);
    expect(await loginForCode(app, newJar(), 'bob', PASSWORD)).toEqual(expect.any(String));
    expect((await eventsOf(users.bob)).at(-1)).toMatchObject({ type: 'account-enabled' });
  });

  it('RISC account-purged disables (never deletes) and revokes', async () => {
    const token = await tokenOf(users.dave);
    expect((await push(await sign(idp, `${RISC}account-purged`, { format: 'opaque', id: users.dave }))).status).toBe(202);
    expect(await isDisabled(users.dave)).toBe(true);
    expect(await active(token)).toBe(false);
    expect(await app.custos.db.selectFrom('iam_user').select('id').where('id', '=', users.dave).executeTakeFirst()).toBeDefined();
  });

  it('CAEP credential-change (revoke), RISC credential-compromise and device not-compliant revoke; credential create and token-claims-change only record', async () => {
    const cases: Array<[Signer, string, Record<string, unknown>, keyof typeof users, boolean, Record<string, string>]> = [
      [idp, `${CAEP}credential-change`, { credential_type: 'fido2-roaming', change_type: 'create' }, 'carol', false, {}],
      [idp, `${CAEP}token-claims-change`, { claims: { role: 'ro-admin' } }, 'carol', false, {}],
      [idp, `${CAEP}credential-change`, { credential_type: 'password', change_type: 'revoke' }, 'carol', true, {}],
      [edr, `${RISC}credential-compromise`, { credential_type: 'password' }, 'frank', true, { authorization: EDR_AUTHORIZATION }],
      [edr, `${CAEP}device-compliance-change`, { previous_status: 'compliant', current_status: 'not-compliant' }, 'grace', true, { authorization: EDR_AUTHORIZATION }],
    ];
    for (const [by, type, payload, name, revokes, headers] of cases) {
      const token = await tokenOf(users[name]);
      expect(await active(token)).toBe(true);
      const jti = randomUUID();
      const subject = by === edr ? { format: 'complex', user: email(name), device: { format: 'opaque', id: 'laptop-7' } } : issSub(users[name]);
      const response = await push(await sign(by, type, subject, payload, { jti }), headers);
      expect(response.status, `${type}: ${response.text}`).toBe(202);
      expect(await active(token), type).toBe(!revokes);
      const [audit] = await auditOf(jti);
      expect(audit?.action, type).toBe(revokes ? 'sessions.revoke' : 'ssf.event.recorded');
    }
  });

  it('a subject that is no Custos user (or an untrusted format) gets 202, changes nothing and is counted', async () => {
    const before = await metric('custos_ssf_receiver_sets_total', { transmitter: 'corp-idp', outcome: 'unknown_subject' });
    const cutOffs = (await stateCounts()).cutOffs;
    for (const subject of [
      email('nobody'),
      { format: 'opaque', id: randomUUID() },
      { format: 'iss_sub', iss: IDP, sub: users.alice }, // another issuer's `sub` is not a Custos user id
      { format: 'phone_number', phone_number: '+12065550100' },
    ]) {
      const response = await push(await sign(idp, `${CAEP}session-revoked`, subject));
      expect(response.status, response.text).toBe(202);
    }
    expect((await stateCounts()).cutOffs).toBe(cutOffs);
    expect(await metric('custos_ssf_receiver_sets_total', { transmitter: 'corp-idp', outcome: 'unknown_subject' })).toBe(before + 4);
  });

  it('an event type Custos does not know is acknowledged and ignored', async () => {
    const token = await tokenOf(users.erin);
    const response = await push(await sign(idp, `${RISC}identifier-changed`, email('erin'), { new_value: 'a@corp.test' }));
    expect(response.status).toBe(202);
    expect(await active(token)).toBe(true);
    expect(await metric('custos_ssf_receiver_sets_total', { transmitter: 'corp-idp', outcome: 'ignored' })).toBeGreaterThanOrEqual(1);
  });

  it('a SET without kid verifies against whichever of the transmitter’s keys signed it', async () => {
    for (const by of [edr, edrPrevious]) {
      const response = await push(await sign({ ...by, kid: '' }, `${RISC}credential-compromise`, email('nobody'), { credential_type: 'password' }), { authorization: EDR_AUTHORIZATION });
      expect(response.status, response.text).toBe(202);
    }
    const forged = await push(await sign({ ...stranger, issuer: EDR, kid: '' }, `${RISC}credential-compromise`, email('nobody'), { credential_type: 'password' }), { authorization: EDR_AUTHORIZATION });
    expect(forged.body).toEqual({ err: 'authentication_failed', description: expect.any(String) });
  });

  it('the JWKS is fetched over verified TLS once and cached', async () => {
    expect(jwksFetches).toBe(1);
  });
});

describe('refusals change nothing and answer RFC 8935 errors', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const revoke = `${CAEP}session-revoked`;
  const cases: Array<[string, string, () => Promise<{ token: string; headers?: Record<string, string> }>]> = [
    ['forged (same kid, another key)', 'authentication_failed', async () => ({ token: await sign(stranger, revoke, issSub(users.erin)) })],
    ['forged (unknown kid)', 'invalid_key', async () => ({ token: await sign({ ...stranger, kid: 'idp-9' }, revoke, issSub(users.erin)) })],
    ['foreign issuer', 'invalid_issuer', async () => ({ token: await sign({ ...stranger, issuer: 'https://evil.test' }, revoke, issSub(users.erin)) })],
    ['wrong audience', 'invalid_audience', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { aud: 'https://someone-else.test' }) })],
    ['alg none', 'invalid_request', async () => ({ token: unsecured('none', { iss: IDP, aud: AUDIENCE, iat: now(), jti: randomUUID(), sub_id: issSub(users.erin), events: { [revoke]: {} } }) })],
    ['alg HS256', 'invalid_request', async () => ({ token: unsecured('HS256', { iss: IDP, aud: AUDIENCE, iat: now(), jti: randomUUID(), sub_id: issSub(users.erin), events: { [revoke]: {} } }) })],
    ['missing iat', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { iat: null }) })],
    ['expired iat', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { iat: now() - 7200 }) })],
    ['iat in the future', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { iat: now() + 600 }) })],
    ['an exp claim', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { extra: { exp: now() + 600 } }) })],
    ['typ JWT', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { typ: 'JWT' }) })],
    ['two events', 'invalid_request', async () => ({ token: await sign(idp, revoke, issSub(users.erin), {}, { events: { [revoke]: {}, [`${RISC}account-disabled`]: {} } }) })],
    ['an event type not accepted from this transmitter', 'access_denied', async () => ({ token: await sign(idp, `${RISC}credential-compromise`, issSub(users.erin), { credential_type: 'password' }) })],
    ['a malformed event payload', 'invalid_request', async () => ({ token: await sign(idp, `${CAEP}credential-change`, issSub(users.erin), { change_type: 'shred' }) })],
    ['missing Authorization header', 'authentication_failed', async () => ({ token: await sign(edr, `${RISC}credential-compromise`, email('erin'), { credential_type: 'password' }) })],
    [
      'wrong Authorization header',
      'authentication_failed',
      async () => ({ token: await sign(edr, `${RISC}credential-compromise`, email('erin'), { credential_type: 'password' }), headers: { authorization: 'Bearer guessed' } }),
    ],
    ['not a JWT', 'invalid_request', async () => ({ token: 'hello' })],
  ];

  it.each(cases)('%s → 400 %s', async (_name, err, make) => {
    const token = await tokenOf(users.erin);
    const before = await stateCounts();
    const { token: set, headers } = await make();
    const response = await push(set, headers);
    expect(response.status, response.text).toBe(400);
    expect(response.body).toEqual({ err, description: expect.any(String) });
    expect(await stateCounts()).toEqual(before);
    expect(await active(token)).toBe(true);
  });

  it('keys behind TLS no configured CA vouches for: 503, nothing changes', async () => {
    const before = await stateCounts();
    const response = await push(await sign({ ...stranger, issuer: UNREACHABLE }, revoke, { format: 'opaque', id: users.alice }));
    expect(response.status).toBe(503);
    expect(response.body.err).toBe('temporarily_unavailable');
    expect(await stateCounts()).toEqual(before);
    expect(await metric('custos_ssf_receiver_refused_total', { transmitter: 'untrusted-tls', reason: 'keys_unavailable' })).toBe(1);
  });

  it('a replayed SET is refused; of parallel deliveries of one SET exactly one applies', async () => {
    const once = await sign(idp, `${CAEP}token-claims-change`, issSub(users.alice), { claims: { role: 'x' } });
    expect((await push(once)).status).toBe(202);
    const before = await stateCounts();
    const replay = await push(once);
    expect(replay.status).toBe(400);
    expect(replay.body).toEqual({ err: 'invalid_request', description: expect.stringMatching(/received before/) });
    expect(await stateCounts()).toEqual(before);

    const jti = randomUUID();
    const set = await sign(idp, `${CAEP}session-revoked`, issSub(users.alice), {}, { jti });
    const eventsBefore = (await eventsOf(users.alice)).length;
    const responses = await Promise.all(Array.from({ length: 8 }, () => push(set)));
    expect(responses.filter((r) => r.status === 202)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 400 && r.body.err === 'invalid_request')).toHaveLength(7);
    expect(await auditOf(jti)).toHaveLength(1);
    expect((await eventsOf(users.alice)).length).toBe(eventsBefore + 1);
  });

  it('other methods and media types', async () => {
    const get = await request(`${app.issuer}/ssf/receiver/events`, { dispatcher: app.agent() });
    expect(get.statusCode).toBe(405);
    await get.body.dump();
    const json = await push(await sign(idp, revoke, issSub(users.alice)), { 'content-type': 'application/json' });
    expect(json.status).toBe(415);
    expect(json.body.err).toBe('invalid_request');
  });

  it('refusals are counted by reason', async () => {
    expect(await metric('custos_ssf_receiver_refused_total', { transmitter: 'unknown', reason: 'invalid_issuer' })).toBeGreaterThanOrEqual(1);
    expect(await metric('custos_ssf_receiver_refused_total', { transmitter: 'corp-idp', reason: 'replayed' })).toBeGreaterThanOrEqual(8);
    expect(await metric('custos_ssf_receiver_refused_total', { transmitter: 'edr', reason: 'authentication_failed' })).toBe(3);
  });
});

describe('configuration', () => {
  async function configWith(receiver: unknown, env: Record<string, string> = {}): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'custos-receiver-bad-'));
    try {
      await writeFile(path.join(dir, 'ssf.json'), JSON.stringify({ ssf_receiver: receiver }));
      loadConfig({ NODE_ENV: 'test', CONFIG_DIR: dir, ...env }, ROOT);
      return '';
    } catch (error) {
      return (error as Error).message;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const valid = { id: 'idp', issuer: IDP, jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }, audience: AUDIENCE, accepted_events: [`${CAEP}session-revoked`], subject_formats: ['email'] };

  it('refuses invalid transmitters with one line naming the field', async () => {
    expect(await configWith({ transmitters: [valid] })).toBe('');
    expect(await configWith({ transmitters: [{ ...valid, jwks: undefined, jwks_uri: 'http://idp.test/jwks' }] })).toMatch(/ssf_receiver\.transmitters\.0\.jwks_uri: an absolute https URL/);
    expect(await configWith({ transmitters: [{ ...valid, jwks_uri: 'https://idp.test/jwks' }] })).toMatch(/transmitters\.0\.jwks_uri: exactly one of jwks_uri and jwks/);
    expect(await configWith({ transmitters: [{ ...valid, jwks: { keys: [{ kty: 'EC', d: 'secret' }] } }] })).toMatch(/transmitters\.0\.jwks\.keys\.0: a public key/);
    expect(await configWith({ transmitters: [{ ...valid, algorithms: ['HS256'] }] })).toMatch(/transmitters\.0\.algorithms\.0/);
    expect(await configWith({ transmitters: [{ ...valid, accepted_events: ['urn:example:whatever'] }] })).toMatch(/transmitters\.0\.accepted_events\.0: one of the event types/);
    expect(await configWith({ transmitters: [valid, { ...valid, id: 'other' }] })).toMatch(/transmitters\.1\.issuer: another transmitter has this issuer/);
  });

  it('an unreadable tls_ca_file or poll.authorization_file stops start-up naming the field', async () => {
    const build = (transmitter: Record<string, unknown>) => () =>
      createSsfReceiverModule({
        config: ssfReceiverSchema.parse({ transmitters: [transmitter] }),
        file: 'ssf.json',
        cwd: ROOT,
        db: app.custos.db,
        logger: app.custos.logger,
        issuer: app.issuer,
        registry: new Registry(),
        bodyLimitBytes: 65536,
      });
    const remote = { ...valid, jwks: undefined, jwks_uri: 'https://idp.test/jwks' };
    expect(build({ ...remote, tls_ca_file: '/nonexistent/ca.pem' })).toThrow(/ssf\.json: ssf_receiver\.transmitters\.0\.tls_ca_file: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
    expect(build({ ...valid, poll: { endpoint_url: 'https://idp.test/poll', authorization_file: '/nonexistent/auth' } })).toThrow(/transmitters\.0\.poll\.authorization_file: cannot read/);
  });

  it('production refuses the published example Authorization header', async () => {
    const demo = { ...valid, authorization_header_sha256: authorizationHeaderDigest(DEMO_TRANSMITTER_AUTHORIZATION) };
    const message = await configWith({ transmitters: [demo] }, {
      NODE_ENV: 'production',
      ISSUER: 'https://auth.example.com',
      KEYS_DIR: '/nonexistent/keys',
      TLS_CERT_FILE: '/nonexistent/tls.crt',
      TLS_KEY_FILE: '/nonexistent/tls.key',
      TLS_CLIENT_CA_FILE: '/nonexistent/ca.crt',
      DATABASE_URL: 'postgres://custos@db.example.com/custos',
      COOKIE_KEYS: 'a-cookie-key-of-at-least-32-characters-0001',
    });
    expect(message).toMatch(/authorization_header_sha256: the example header published in docs\/operators\.md/);
  });
});

describe('receiving by poll (RFC 8936)', () => {
  const notCompliant = { previous_status: 'compliant', current_status: 'not-compliant' };
  const device = `${CAEP}device-compliance-change`;

  it('a polled SET is applied and acknowledged; the poll carries the configured Authorization header', async () => {
    const token = await tokenOf(users.henry);
    expect(await active(token)).toBe(true);
    const jti = randomUUID();
    const answer = await pollDeliver(jti, await sign(mdm, device, { format: 'complex', user: email('henry'), device: { format: 'opaque', id: 'phone-1' } }, notCompliant, { jti }));
    expect(answer).toEqual({ ack: true });
    expect(await active(token)).toBe(false);
    expect(await auditOf(jti)).toEqual([expect.objectContaining({ actor: 'ssf:mdm', action: 'sessions.revoke', target: `user:${users.henry}` })]);
    expect(pollRefusedAuth).toBe(0);
  });

  it('a forged or mis-addressed polled SET is reported in setErrs and changes nothing', async () => {
    const token = await tokenOf(users.erin);
    const before = await stateCounts();
    const forgedJti = randomUUID();
    const forged = await pollDeliver(forgedJti, await sign({ ...stranger, issuer: MDM, kid: 'mdm-1' }, device, email('erin'), notCompliant, { jti: forgedJti }));
    expect(forged).toEqual({ err: 'authentication_failed', description: expect.any(String) });
    const wrongAudJti = randomUUID();
    const wrongAud = await pollDeliver(wrongAudJti, await sign(mdm, device, email('erin'), notCompliant, { jti: wrongAudJti, aud: 'https://other.test' }));
    expect(wrongAud).toEqual({ err: 'invalid_audience', description: expect.any(String) });
    const foreignJti = randomUUID();
    const foreign = await pollDeliver(foreignJti, await sign(idp, `${CAEP}session-revoked`, issSub(users.erin), {}, { jti: foreignJti }));
    expect(foreign).toEqual({ err: 'invalid_issuer', description: expect.any(String) });
    expect(await stateCounts()).toEqual(before);
    expect(await active(token)).toBe(true);
  });

  it('a SET delivered again (its acknowledgement lost) is acknowledged again and applied once', async () => {
    const jti = randomUUID();
    const set = await sign(mdm, device, email('nobody'), notCompliant, { jti });
    expect(await pollDeliver(jti, set)).toEqual({ ack: true });
    const before = await stateCounts();
    expect(await pollDeliver(jti, set)).toEqual({ ack: true });
    expect(await stateCounts()).toEqual(before);
    expect(await auditOf(jti)).toHaveLength(1);
  });
});

describe('retention', () => {
  it('received-SET records older than the iat window are pruned; newer ones stay', async () => {
    const db = app.custos.db;
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await db.insertInto('ssf_received_set').values({ issuer: IDP, jti: `old-${randomUUID()}`, transmitter: 'corp-idp', event_type: `${CAEP}session-revoked`, received_at: old }).execute();
    const before = (await stateCounts()).received;
    // corp-idp's window: max_age_seconds 3600 + 2 × 60 s clock skew + 60 s.
    expect(await pruneReceivedSets(db, 3600 + 180)).toBe(1);
    expect((await stateCounts()).received).toBe(before - 1);
  });
});

describe('without ssf_receiver', () => {
  it('the endpoint does not exist and no receiver metric is registered', async () => {
    const plain = await startTestApp();
    try {
      const response = await request(`${plain.issuer}/ssf/receiver/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/secevent+jwt' },
        body: await sign(idp, `${CAEP}session-revoked`, { format: 'opaque', id: randomUUID() }),
        dispatcher: plain.agent(),
      });
      await response.body.dump();
      expect(response.statusCode).toBe(404);
      expect(plain.custos.metrics.registry.getSingleMetric('custos_ssf_receiver_requests_total')).toBeUndefined();
    } finally {
      await plain.stop();
    }
  });
});
