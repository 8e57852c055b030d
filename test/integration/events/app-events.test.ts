import { fetch as undiciFetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvent } from '../../../src/events/outbox.repository.js';
import { createAccessTokenVerifier, createRevocationState, createSecurityEventVerifier } from '../../../src/verify/index.js';
import { adminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { brokerUnavailable, readTopic, testBroker, uniqueTopic, type TestBroker } from '../../helpers/pulsar.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

const AUDIENCE = 'urn:example:orders-proxy';
const RESOURCE = 'https://api.custos.test/orders';

describe.skipIf(brokerUnavailable)('Custos publishes signed IAM events to Pulsar; a consumer applies them', () => {
  let app: TestApp;
  let broker: TestBroker;
  const topic = uniqueTopic('app');

  beforeAll(async () => {
    broker = await testBroker();
    app = await startTestApp({
      env: {
        EVENTS_SINK: 'pulsar-ws',
        PULSAR_WS_URL: broker.wsUrl,
        EVENTS_TOPIC: topic,
        EVENTS_AUDIENCE: `${AUDIENCE},urn:example:other`,
        EVENTS_POLL_INTERVAL_MS: '200',
      },
    });
  }, 300_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('SETs verify against the served JWKS, and a revocation refuses tokens issued before it only', async () => {
    const before = await mintUserAccessToken(app, { sub: 'alice' });
    const served = (url: string | URL | Request, init?: RequestInit) =>
      undiciFetch(url as string, { ...(init as object), dispatcher: app.agent() }) as unknown as Promise<Response>;
    const events = createSecurityEventVerifier({ issuer: app.issuer, audience: AUDIENCE, jwksUri: `${app.issuer}/jwks`, fetch: served });
    const revocations = createRevocationState();
    const tokens = createAccessTokenVerifier({ issuer: app.issuer, audience: RESOURCE, jwksUri: `${app.issuer}/jwks`, fetch: served, requireBinding: false, revocations });
    await expect(tokens.verify(before)).resolves.toMatchObject({ sub: 'alice' });

    // What an admin API mutation does: the IAM change and its event in one transaction.
    const eventId = await app.custos.db.transaction().execute((trx) =>
      recordEvent(trx, { type: 'session-revoked', userId: 'alice', sessionIds: [], initiatingEntity: 'admin', reasonAdmin: 'suspicious sign-in' }),
    );
    const [message] = await readTopic(broker, topic, { expect: 1 });
    expect(message?.key).toBe('alice');
    const event = await events.verify(message!.payload);
    expect(event).toMatchObject({ id: eventId, subject: 'alice', kind: 'session-revoked' });
    expect(event.claims['aud']).toEqual([AUDIENCE, 'urn:example:other']);
    expect(revocations.apply(event)).toBe('applied');
    expect(revocations.apply(event)).toBe('duplicate');

    await expect(tokens.verify(before)).rejects.toMatchObject({ code: 'subject_revoked' });
    while (Math.floor(Date.now() / 1000) <= event.eventTimestamp) await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await mintUserAccessToken(app, { sub: 'alice' });
    await expect(tokens.verify(after)).resolves.toMatchObject({ sub: 'alice' });

    const [header, payload, signature] = message!.payload.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { events: Record<string, { event_timestamp: number }> };
    for (const body of Object.values(claims.events)) body.event_timestamp -= 3600;
    await expect(events.verify(`${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`)).rejects.toMatchObject({
      code: 'invalid_security_event',
    });

    const metrics = await app.custos.metrics.registry.metrics();
    expect(metrics).toMatch(/^custos_events_published_total 1$/m);
    expect(metrics).toMatch(/^custos_events_outbox_backlog 0$/m);
    expect(metrics).toMatch(/^custos_events_publish_latency_seconds_count 1$/m);
  });

  it("a client disabled through the admin API: the consumer refuses the client's tokens (client_disabled), then only its older ones once enabled again", async () => {
    const served = (url: string | URL | Request, init?: RequestInit) =>
      undiciFetch(url as string, { ...(init as object), dispatcher: app.agent() }) as unknown as Promise<Response>;
    const events = createSecurityEventVerifier({ issuer: app.issuer, audience: AUDIENCE, jwksUri: `${app.issuer}/jwks`, fetch: served });
    const revocations = createRevocationState();
    const tokens = createAccessTokenVerifier({ issuer: app.issuer, audience: RESOURCE, jwksUri: `${app.issuer}/jwks`, fetch: served, requireBinding: false, revocations });
    const admin = await adminClient(app);
    const created = await admin.call('POST', '/admin/clients', {
      body: { client_id: 'events-svc', grant_types: ['client_credentials'], scope: 'orders:read', resources: [RESOURCE], default_resource: RESOURCE },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const clientToken = async (): Promise<string> => {
      const response = await request(`${app.issuer}/token`, {
        method: 'POST',
        dispatcher: app.agent(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`events-svc:${created.body.client_secret as string}`).toString('base64')}` },
        body: 'grant_type=client_credentials&scope=orders%3Aread',
      });
      const body = (await response.body.json()) as { access_token?: string };
      expect(response.statusCode, JSON.stringify(body)).toBe(200);
      return body.access_token!;
    };
    const before = await clientToken();
    await expect(tokens.verify(before)).resolves.toMatchObject({ client_id: 'events-svc' });

    expect((await admin.call('POST', '/admin/clients/events-svc/disable', { body: { reason: 'key leaked' } })).status).toBe(200);
    const applyClientEvents = async (count: number) => {
      const messages = (await readTopic(broker, topic, { expect: count })).filter((message) => message.key === 'events-svc');
      for (const message of messages) revocations.apply(await events.verify(message.payload));
      return messages.length;
    };
    // The topic holds the first test's event, the client's creation, and now its disabling.
    expect(await applyClientEvents(3)).toBe(2);
    expect(revocations.getClient('events-svc')).toMatchObject({ disabled: true });
    await expect(tokens.verify(before)).rejects.toMatchObject({ code: 'client_disabled' });

    expect((await admin.call('POST', '/admin/clients/events-svc/enable', { body: {} })).status).toBe(200);
    expect(await applyClientEvents(4)).toBe(3);
    const disabledAt = revocations.getClient('events-svc')!.revokedAt!;
    while (Math.floor(Date.now() / 1000) <= disabledAt) await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await clientToken();
    await expect(tokens.verify(after)).resolves.toMatchObject({ client_id: 'events-svc' });
    await expect(tokens.verify(before)).rejects.toMatchObject({ code: 'client_revoked' });
  });
});
