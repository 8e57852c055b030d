import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { request as undiciRequest } from 'undici';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientService } from '../../../src/clients/client.service.js';
import { createDb } from '../../../src/db/create-db.js';
import { hashSecret } from '../../../src/iam/secret-hash.js';
import type { Database } from '../../../src/db/database.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { DEMO } from '../../helpers/app.js';
import { CLUSTER_ISSUER, startCluster, type Cluster, type CookieJar, type Instance } from '../../helpers/instances.js';

// Two real `custos serve` processes on one PostgreSQL, no sticky sessions: every check issues on
// one instance and looks at the other. Further cluster checks (login across instances, refresh
// reuse, brute-force lock, single relay) belong in this file as more describe blocks.
let cluster: Cluster;
let a: Instance;
let b: Instance;

let db: Kysely<Database>;
const PASSWORD = 'correct horse battery staple';
const REDIRECT_URI = 'http://localhost:3000/callback';

beforeAll(async () => {
  // No growing delay on failed logins: the lock itself is what is checked across instances.
  cluster = await startCluster(2, { env: { LOGIN_DELAY_MS: '0' } });
  [a, b] = cluster.instances as [Instance, Instance];
  db = createDb(cluster.databaseUrl, { max: 2 });
  const users = createUserService({ db, hasher: createPasswordHasher() });
  const by = { actor: 'test', initiatingEntity: 'admin' as const };
  await users.createRole({ name: 'orders-reader' }, by);
  for (const username of ['bob', 'mallory-target']) await users.create({ username, password: PASSWORD, roles: ['orders-reader'] }, by);
}, 90_000);

afterAll(async () => {
  await db?.destroy();
  await cluster?.stop();
});

/** Starts an authorization request (PKCE) at `instance`; returns the login page's path. */
async function startLogin(instance: Instance, jar: CookieJar) {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const params = new URLSearchParams({
    client_id: 'web-bff',
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid orders:read',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
  });
  const started = await instance.browse(jar, 'GET', `/auth?${params}`);
  expect(started.status, started.text).toBe(303);
  const interaction = new URL(started.location!, CLUSTER_ISSUER).pathname;
  expect(interaction).toMatch(/^\/interaction\/[\w-]+$/);
  return { verifier, state, interaction };
}

/** Submits the login form of `interaction` at `instance` (the form is fetched there first). */
async function submitLogin(instance: Instance, jar: CookieJar, interaction: string, username: string, password: string) {
  const page = await instance.browse(jar, 'GET', interaction);
  expect(page.status, page.text).toBe(200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  expect(csrf).toBeTruthy();
  return instance.browse(jar, 'POST', `${interaction}/login`, { csrf: csrf!, username, password });
}

/** The whole login: start at `starts`, show and submit the form at `logsIn`, resume and redeem at `finishes`. */
async function logIn(starts: Instance, logsIn: Instance, finishes: Instance, username = 'bob') {
  const jar: CookieJar = new Map();
  const { verifier, state, interaction } = await startLogin(starts, jar);
  const submitted = await submitLogin(logsIn, jar, interaction, username, PASSWORD);
  expect(submitted.status, submitted.text).toBe(303);
  const resumed = await finishes.browse(jar, 'GET', submitted.location!);
  expect(resumed.status, resumed.text).toBe(303);
  const callback = new URL(resumed.location!);
  expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
  expect(callback.searchParams.get('state')).toBe(state);
  const code = callback.searchParams.get('code');
  expect(code, resumed.location).toBeTruthy();
  const tokens = await finishes.post('/token', { grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: REDIRECT_URI }, { basic: DEMO.webBff });
  expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
  return tokens.body as { access_token: string; refresh_token: string; id_token: string };
}

async function clientCredentials(instance: Instance): Promise<string> {
  const { status, body } = await instance.post('/token', { grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
  expect(status, JSON.stringify(body)).toBe(200);
  return body.access_token as string;
}

async function jwks(instance: Instance): Promise<JSONWebKeySet> {
  const { status, body } = await instance.get('/jwks');
  expect(status).toBe(200);
  return body as JSONWebKeySet;
}

/** Requests an instance logged for a path (its access log: one JSON line per request). */
function requests(instance: Instance, path: string): number {
  return instance.output().split('\n').filter((line) => line.includes(`"path":"${path}"`)).length;
}

async function introspect(instance: Instance, token: string) {
  const { status, body } = await instance.post('/token/introspection', { token }, { basic: DEMO.reportingJob });
  expect(status, JSON.stringify(body)).toBe(200);
  return body as { active: boolean; client_id?: string; jti?: string };
}

describe('two instances on one PostgreSQL', () => {
  it('both started against the same database (migrations ran once) with the same issuer', async () => {
    for (const instance of [a, b]) {
      const { body } = await instance.get('/.well-known/openid-configuration');
      expect(body.issuer).toBe(CLUSTER_ISSUER);
    }
    expect(a.port).not.toBe(b.port);
  });

  it('a token issued by one verifies and introspects at the other', async () => {
    const counts = () => [a, b].map((instance) => [requests(instance, '/token'), requests(instance, '/token/introspection')]);
    const start = counts();
    const token = await clientCredentials(a);
    const { payload } = await jwtVerify(token, createLocalJWKSet(await jwks(b)), { issuer: CLUSTER_ISSUER, audience: DEMO.ordersResource });
    expect(payload.client_id).toBe('reporting-job');
    expect(await introspect(b, token)).toMatchObject({ active: true, client_id: 'reporting-job', jti: payload.jti });
    // The requests really went to different processes (access log lines arrive after the responses).
    await expect.poll(counts).toEqual([
      [start[0]![0]! + 1, start[0]![1]],
      [start[1]![0], start[1]![1]! + 1],
    ]);

    const mtls = await b.post('/token', { grant_type: 'client_credentials', scope: 'orders:read' }, { client: 'orders-api' });
    expect(mtls.status, JSON.stringify(mtls.body)).toBe(200);
    const atA = await a.post('/token/introspection', { token: mtls.body.access_token }, { client: 'orders-api' });
    expect(atA.body).toMatchObject({ active: true, client_id: 'orders-api', cnf: { 'x5t#S256': cluster.pki.clients['orders-api']!.x5tS256 } });
  });

  it('a revocation at one is seen by the other', async () => {
    const token = await clientCredentials(b);
    expect((await introspect(a, token)).active).toBe(true);
    const revoked = await a.post('/token/revocation', { token }, { basic: DEMO.reportingJob });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(await introspect(b, token)).toEqual({ active: false });
    expect(await introspect(a, token)).toEqual({ active: false });
    // A fresh token of the same client is unaffected.
    expect((await introspect(b, await clientCredentials(a))).active).toBe(true);
  });

  it('a key rotation (keys rotate + SIGHUP to each) never yields a token signed by a key missing from the other JWKS', async () => {
    const before = await jwks(a);
    expect(await jwks(b)).toEqual(before);
    const rotated = await rotateSigningKeys(cluster.keysDir);

    // Every moment of a rolling reload: tokens from either instance verify with the other's JWKS.
    const crossCheck = async () => {
      for (const [issuing, checking] of [
        [a, b],
        [b, a],
      ] as const) {
        const token = await clientCredentials(issuing);
        const published = await jwks(checking);
        const { kid } = decodeProtectedHeader(token);
        expect(published.keys.map((key) => key.kid), `${issuing.name} signed with ${kid}`).toContain(kid);
        await jwtVerify(token, createLocalJWKSet(published), { issuer: CLUSTER_ISSUER });
        expect((await introspect(checking, token)).active).toBe(true);
      }
    };
    await crossCheck(); // rotated on disk, neither reloaded
    await a.reload();
    expect(decodeProtectedHeader(await clientCredentials(a)).kid).toBe(rotated.current.kid);
    expect(decodeProtectedHeader(await clientCredentials(b)).kid).toBe(rotated.previous!.kid);
    await crossCheck(); // only A reloaded
    await b.reload();
    await crossCheck(); // both reloaded
    const after = (await jwks(b)).keys.map((key) => key.kid);
    expect(after).toEqual([rotated.current.kid, rotated.next.kid, rotated.previous!.kid]);
    expect((await jwks(a)).keys.map((key) => key.kid)).toEqual(after);
  });
});

describe('two instances: login and sessions', () => {
  it('a login started on one completes on the other (form and redemption on the other instance)', async () => {
    const tokens = await logIn(a, b, a);
    const { payload } = await jwtVerify(tokens.id_token, createLocalJWKSet(await jwks(b)), { issuer: CLUSTER_ISSUER, audience: 'web-bff' });
    expect(payload.sub).toEqual(expect.any(String));
    const again = await logIn(b, a, b);
    expect(again.refresh_token).toBeTruthy();
  });

  it('a refresh token rotated on one is refused as reused on the other', async () => {
    const { refresh_token: first } = await logIn(a, a, a);
    const rotated = await a.post('/token', { grant_type: 'refresh_token', refresh_token: first }, { basic: DEMO.webBff });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(first);
    const reused = await b.post('/token', { grant_type: 'refresh_token', refresh_token: first }, { basic: DEMO.webBff });
    expect(reused.status).toBe(400);
    expect(reused.body.error).toBe('invalid_grant');
    // Reuse revokes the grant: the token it was rotated into is dead too, at either instance.
    const successor = await a.post('/token', { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token }, { basic: DEMO.webBff });
    expect(successor.body.error).toBe('invalid_grant');
  });

  it('the brute-force lock holds across both instances', async () => {
    const jar: CookieJar = new Map();
    const { interaction } = await startLogin(a, jar);
    // Five failures (the per-account maximum), alternating between the instances.
    for (let attempt = 0; attempt < 5; attempt++) {
      const failed = await submitLogin(attempt % 2 === 0 ? a : b, jar, interaction, 'mallory-target', 'wrong password guess');
      expect(failed.text).toMatch(/Incorrect username or password|Too many failed attempts/);
    }
    // Now even the right password is refused at both instances.
    for (const instance of [a, b]) {
      const refused = await submitLogin(instance, jar, interaction, 'mallory-target', PASSWORD);
      expect(refused.status).not.toBe(303);
      expect(refused.text).toContain('Too many failed attempts');
    }
  });
});

describe('two instances: DPoP', () => {
  it('a DPoP proof used at one is refused at the other (replay detection in PostgreSQL)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const proof = await new SignJWT({ htm: 'POST', htu: `${CLUSTER_ISSUER}/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    const tokenAt = async (instance: Instance) => {
      const response = await undiciRequest(`${CLUSTER_ISSUER}/token`, {
        method: 'POST',
        dispatcher: instance.agent(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`,
          dpop: proof,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read' }).toString(),
      });
      return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
    };
    const first = await tokenAt(a);
    expect([first.status, first.body.token_type]).toEqual([200, 'DPoP']);
    const replayed = await tokenAt(b);
    expect([replayed.status, replayed.body.error]).toEqual([400, 'invalid_grant']);
  });
});

describe('clients as data across instances', () => {
  it('a client registered, rotated and disabled while both run is seen by both, without a restart', async () => {
    // As `custos clients` does: the change commits with a NOTIFY; no instance is told directly.
    const clients = createClientService({ db, hashSecret, seedSource: 'test', validation: () => ({ resources: new Set([DEMO.ordersResource]), production: false }) });
    const by = { actor: 'test', initiatingEntity: 'admin' as const };
    const form = { grant_type: 'client_credentials', scope: 'orders:read', resource: DEMO.ordersResource };
    const eventually = async (instance: Instance, basic: [string, string], status: number) => {
      let answer = await instance.post('/token', form, { basic });
      for (let i = 0; i < 50 && answer.status !== status; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        answer = await instance.post('/token', form, { basic });
      }
      return answer.status;
    };
    const created = await clients.create({ client_id: 'cluster-job', grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource] }, by);
    const first: [string, string] = ['cluster-job', created.client_secret!];
    expect(await eventually(a, first, 200)).toBe(200);
    expect(await eventually(b, first, 200)).toBe(200);
    const rotated = await clients.rotateSecret('cluster-job', by);
    const second: [string, string] = ['cluster-job', rotated.client_secret];
    for (const instance of [a, b]) {
      expect(await eventually(instance, second, 200)).toBe(200);
      expect(await eventually(instance, first, 401)).toBe(401);
    }
    await clients.disable('cluster-job', by);
    for (const instance of [a, b]) expect(await eventually(instance, second, 401)).toBe(401);
  });
});
