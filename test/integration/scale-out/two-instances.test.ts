import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { DEMO } from '../../helpers/app.js';
import { CLUSTER_ISSUER, startCluster, type Cluster, type Instance } from '../../helpers/instances.js';

// Two real `custos serve` processes on one PostgreSQL, no sticky sessions: every check issues on
// one instance and looks at the other. Further cluster checks (login across instances, refresh
// reuse, brute-force lock, single relay) belong in this file as more describe blocks.
let cluster: Cluster;
let a: Instance;
let b: Instance;

beforeAll(async () => {
  cluster = await startCluster(2);
  [a, b] = cluster.instances as [Instance, Instance];
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

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
