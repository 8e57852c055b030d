import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvent } from '../../../src/events/outbox.repository.js';
import { createAccessTokenVerifier, createRevocationState, createSecurityEventVerifier } from '../../../src/verify/index.js';
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
});
