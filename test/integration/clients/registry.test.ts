import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertClient, insertSecret, loadClients, notifyClientChanged } from '../../../src/clients/client.repository.js';
import { applyClientSeed } from '../../../src/clients/config-seed.js';
import { PreparingClient } from '../../../src/db/prepared-statements.js';
import { hashSecret } from '../../../src/iam/secret-hash.js';
import { startCustos, type RunningCustos } from '../../../src/main.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

// Clients as data, step 1: the config file is a seed, oidc-provider finds clients from the
// registry's memory (no database read on the token path), and a change made on one instance is
// seen by another through LISTEN/NOTIFY, without a restart.
let app: TestApp;
let second: RunningCustos;
const ROOT = path.resolve(import.meta.dirname, '../../..');

beforeAll(async () => {
  app = await startTestApp();
  // A second instance on the same database, keys and client file (as behind a load balancer).
  second = await startCustos({
    env: { NODE_ENV: 'test', PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', DATABASE_URL: app.databaseUrl, KEYS_DIR: app.keysDir, CONFIG_DIR: app.configDir, LOG_LEVEL: 'warn' },
    cwd: ROOT,
    logDestination: { write: () => true } as never,
  });
}, 90_000);

afterAll(async () => {
  await second?.stop();
  await app?.stop();
});

/**
 * A statement reading a client: the client tables (kysely quotes table names), or oidc-provider's
 * `Client` model in `oidc_model` (what its adapter would read without the registry).
 */
const CLIENT_READ = /from "client(_secret|_certificate)?"|"Client"/;

/** A statement's text and parameters, as the pool's client receives them. */
function describeStatement(args: unknown[]): string {
  const [first, second] = args as [string | { text?: string; values?: unknown[] }, unknown[] | undefined];
  return typeof first === 'string' ? `${first} ${JSON.stringify(second ?? [])}` : `${first?.text ?? ''} ${JSON.stringify(first?.values ?? [])}`;
}
const clientCredentials = { grant_type: 'client_credentials', scope: 'orders:read', resource: 'https://api.custos.test/orders' };

/** Token request to the second instance (its own port, same issuer name does not matter for the token endpoint). */
async function tokenAtSecond(form: Record<string, string>, basic: [string, string]) {
  const { request } = await import('undici');
  const response = await request(`https://localhost:${second.port}/token`, {
    method: 'POST',
    body: new URLSearchParams(form).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`,
    },
    dispatcher: app.agent(),
  });
  return { status: response.statusCode, body: (await response.body.json()) as any };
}

describe('the client file as a seed', () => {
  it('stores the configured clients as config-managed, and applying the file again changes nothing', async () => {
    const stored = await loadClients(app.custos.db);
    const configured = app.custos.config.files.clients.map((client) => client.client_id).sort();
    expect(stored.map((client) => client.clientId).sort()).toEqual(configured);
    expect(stored.every((client) => client.managedBy === 'config' && client.status === 'active')).toBe(true);
    const ordersApi = stored.find((client) => client.clientId === 'orders-api')!;
    expect(ordersApi.certificates.map((certificate) => certificate.binding)).toEqual([{ tls_client_auth_san_dns: 'orders-api.clients.custos.test' }]);
    expect(stored.find((client) => client.clientId === 'reporting-job')!.secrets).toHaveLength(1);

    const auditBefore = await app.custos.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).where('action', 'like', 'client.%').executeTakeFirstOrThrow();
    const outboxBefore = await app.custos.db.selectFrom('event_outbox').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    // Applied twice (the second instance's start already applied it once more): nothing changes.
    const again = await applyClientSeed(app.custos.db, app.custos.config.files.clients, 'test');
    expect(again).toEqual({ created: [], updated: [], disabled: [] });
    expect(await loadClients(app.custos.db)).toEqual(stored);
    const auditAfter = await app.custos.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).where('action', 'like', 'client.%').executeTakeFirstOrThrow();
    const outboxAfter = await app.custos.db.selectFrom('event_outbox').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(auditAfter.n).toBe(auditBefore.n);
    expect(outboxAfter.n).toBe(outboxBefore.n);
    expect(Number(auditAfter.n)).toBe(configured.length); // one client.create each, at the first start
  });
});

describe('dynamic registration', () => {
  it('is off by default: no registration endpoint, no initial access tokens', async () => {
    const { request } = await import('undici');
    const response = await request(`${app.issuer}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', dispatcher: app.agent() });
    await response.body.dump();
    expect(response.statusCode).toBe(404);
    expect(app.custos.config.files.client_registration.enabled).toBe(false);
    const discovery = await request(`${app.issuer}/.well-known/openid-configuration`, { dispatcher: app.agent() });
    const body = (await discovery.body.json()) as Record<string, unknown>;
    expect(discovery.statusCode).toBe(200);
    expect(body.token_endpoint).toBe(`${app.issuer}/token`);
    expect(body).not.toHaveProperty('registration_endpoint');
  });
});

describe('the token path', () => {
  it('reads no client from the database for a known client', async () => {
    // Warm: the first request builds oidc-provider's Client instance.
    expect((await app.token(clientCredentials, { basic: DEMO.reportingJob })).status).toBe(200);
    expect((await app.token({ ...clientCredentials, client_id: 'orders-api' }, { agent: app.clientAgent('orders-api') })).status).toBe(200);
    const statements: string[] = [];
    const original = PreparingClient.prototype.query;
    PreparingClient.prototype.query = function recording(this: PreparingClient, ...args: unknown[]) {
      statements.push(describeStatement(args));
      return (original as (...params: unknown[]) => never).apply(this, args);
    } as typeof original;
    try {
      for (let i = 0; i < 5; i++) {
        const secret = await app.token(clientCredentials, { basic: DEMO.reportingJob });
        expect(secret.status, JSON.stringify(secret.body)).toBe(200);
        const mtls = await app.token({ ...clientCredentials, client_id: 'orders-api' }, { agent: app.clientAgent('orders-api') });
        expect(mtls.status, JSON.stringify(mtls.body)).toBe(200);
      }
    } finally {
      PreparingClient.prototype.query = original;
    }
    expect(statements.filter((text) => CLIENT_READ.test(text))).toEqual([]);
  });

  it('records the statements it is meant to see (the recording itself works)', async () => {
    const statements: string[] = [];
    const original = PreparingClient.prototype.query;
    PreparingClient.prototype.query = function recording(this: PreparingClient, ...args: unknown[]) {
      statements.push(describeStatement(args));
      return (original as (...params: unknown[]) => never).apply(this, args);
    } as typeof original;
    try {
      await loadClients(app.custos.db, ['reporting-job']);
      await app.custos.db.selectFrom('oidc_model').select('id').where('model', '=', 'Client').execute();
    } finally {
      PreparingClient.prototype.query = original;
    }
    expect(statements.filter((text) => CLIENT_READ.test(text))).toHaveLength(4);
  });
});

describe('a change on one instance', () => {
  const secret = 'api-made-client-secret-0123456789';

  it('is seen by another instance without a restart (LISTEN/NOTIFY)', async () => {
    const before = await tokenAtSecond(clientCredentials, ['api-made', secret]);
    expect(before.status).toBe(401);
    const hash = await hashSecret(secret);
    await app.custos.db.transaction().execute(async (trx) => {
      await insertClient(trx, {
        clientId: 'api-made',
        managedBy: 'api',
        metadata: {
          token_endpoint_auth_method: 'client_secret_basic',
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          post_logout_redirect_uris: [],
          scope: 'orders:read',
          resources: ['https://api.custos.test/orders'],
          default_resource: 'https://api.custos.test/orders',
          serves: [],
          introspection: false,
          first_party: false,
          backchannel_logout_session_required: true,
          require_mfa: false,
        },
      });
      await insertSecret(trx, 'api-made', hash);
      await notifyClientChanged(trx, 'api-made');
    });
    // The notification arrives within a round trip; poll (bounded) rather than assume a time.
    let after = await tokenAtSecond(clientCredentials, ['api-made', secret]);
    for (let attempt = 0; attempt < 50 && after.status !== 200; attempt++) {
      await sleep(100);
      after = await tokenAtSecond(clientCredentials, ['api-made', secret]);
    }
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect((await app.token(clientCredentials, { basic: ['api-made', secret] })).status).toBe(200);
  });

  it('survives a restart with a different client file; a config client the file drops is disabled, not deleted', async () => {
    const file = path.join(app.configDir, 'clients.json');
    const original = JSON.parse(await readFile(file, 'utf8'));
    const reduced = { ...original, clients: original.clients.filter((client: { client_id: string }) => client.client_id !== 'reporting-job') };
    await writeFile(file, JSON.stringify(reduced, null, 2));
    await app.restart();
    const stored = new Map((await loadClients(app.custos.db)).map((client) => [client.clientId, client]));
    expect(stored.get('api-made')).toMatchObject({ managedBy: 'api', status: 'active' });
    expect(stored.get('reporting-job')).toMatchObject({ managedBy: 'config', status: 'disabled' });
    expect((await app.token(clientCredentials, { basic: ['api-made', secret] })).status).toBe(200);
    const dropped = await app.token(clientCredentials, { basic: DEMO.reportingJob });
    expect(dropped.status).toBe(401);
    expect(dropped.body.error).toBe('invalid_client');
    // Named again: enabled again.
    await writeFile(file, JSON.stringify(original, null, 2));
    await app.restart();
    expect((await app.token(clientCredentials, { basic: DEMO.reportingJob })).status).toBe(200);
  });

  it('refuses to start when the file names a client registered through the API', async () => {
    const file = path.join(app.configDir, 'clients.json');
    const original = JSON.parse(await readFile(file, 'utf8'));
    const taken = structuredClone(original.clients.find((client: { client_id: string }) => client.client_id === 'reporting-job'));
    taken.client_id = 'api-made';
    await writeFile(file, JSON.stringify({ ...original, clients: [...original.clients, taken] }, null, 2));
    await expect(app.restart()).rejects.toThrow(/client api-made was registered through the admin API/);
    await writeFile(file, JSON.stringify(original, null, 2));
    await app.restart();
  });
});
