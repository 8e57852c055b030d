import { beforeAll, describe, expect, it } from 'vitest';
import {
  VerifyError,
  createEventTokenVerifier,
  eventPayloadHash,
  verifyEventToken,
  type EventTokenVerifier,
  type VerifyErrorCode,
} from '../../../src/verify/index.js';
import { ISSUER, accessClaims, jwksOf, makeIssuerKey, nowSec, signToken, type IssuerKey } from './fixtures.js';

const CONSUMER = 'https://billing.api.test';

const payload = {
  orderId: 'ord-7f3a',
  customer: { id: 'user-123', tier: 'gold' },
  items: [
    { sku: 'A-1', qty: 2, price: 19.99 },
    { sku: 'B-2', qty: 1, price: 5 },
  ],
  total: 44.98,
  currency: 'EUR',
  express: false,
  note: null,
};

let key: IssuerKey;
let otherKey: IssuerKey;
let events: EventTokenVerifier;

beforeAll(async () => {
  [key, otherKey] = await Promise.all([makeIssuerKey('key-1'), makeIssuerKey('key-2')]);
  events = createEventTokenVerifier({ issuer: ISSUER, jwks: jwksOf(key) });
});

/** Claims of a token-exchange result (DESIGN.md token exchange profile). */
const eventClaims = (overrides: Record<string, unknown> = {}) =>
  accessClaims({
    aud: [CONSUMER, 'https://delivery.api.test'],
    scope: 'resume_orders',
    client_id: 'orders-api',
    act: { sub: 'orders-api', act: { sub: 'web-bff' } },
    event_payload_hash: eventPayloadHash(payload),
    iat: nowSec(),
    exp: nowSec() + 365 * 86_400,
    ...overrides,
  });

async function expectCode(promise: Promise<unknown>, code: VerifyErrorCode): Promise<VerifyError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, `expected VerifyError ${code}`).toBeInstanceOf(VerifyError);
  expect((error as VerifyError).code).toBe(code);
  return error as VerifyError;
}

describe('verifyEventToken', () => {
  it('accepts the exact payload and returns the event claims', async () => {
    const claims = eventClaims();
    const token = await signToken(key, claims);
    const result = await events.verifyEventToken(token, payload, { audience: CONSUMER, requiredScope: 'resume_orders' });
    expect(result).toMatchObject({
      iss: ISSUER,
      sub: 'user-123',
      scope: ['resume_orders'],
      event_payload_hash: eventPayloadHash(payload),
      act: { sub: 'orders-api', act: { sub: 'web-bff' } },
      jti: claims.jti,
      exp: claims.exp,
    });
  });

  it('accepts the payload after a JSON round trip and with a different key order (JCS)', async () => {
    const token = await signToken(key, eventClaims());
    const reordered = {
      note: null,
      express: false,
      currency: 'EUR',
      total: 44.98,
      items: [
        { price: 19.99, qty: 2, sku: 'A-1' },
        { qty: 1, price: 5.0, sku: 'B-2' },
      ],
      customer: { tier: 'gold', id: 'user-123' },
      orderId: 'ord-7f3a',
    };
    await expect(events.verifyEventToken(token, reordered, { audience: CONSUMER })).resolves.toBeTruthy();
    await expect(
      events.verifyEventToken(token, JSON.parse(JSON.stringify(payload, null, 2)), { audience: CONSUMER }),
    ).resolves.toBeTruthy();
  });

  it('rejects any change of the payload with payload_mismatch', async () => {
    const token = await signToken(key, eventClaims());
    const tampered: unknown[] = [
      { ...payload, total: 0.01 },
      { ...payload, customer: { id: 'user-999', tier: 'gold' } },
      { ...payload, items: [...payload.items].reverse() },
      { ...payload, express: true },
      { ...payload, note: 'null' },
      { ...payload, currency: 'EUR ' },
      { ...payload, extra: 1 },
      Object.fromEntries(Object.entries(payload).filter(([name]) => name !== 'note')),
      { ...payload, total: '44.98' },
      [payload],
      null,
    ];
    for (const candidate of tampered) {
      await expectCode(events.verifyEventToken(token, candidate, { audience: CONSUMER }), 'payload_mismatch');
    }
    // A payload that is not JSON data cannot match either.
    await expectCode(events.verifyEventToken(token, { ...payload, total: Number.NaN }, { audience: CONSUMER }), 'payload_mismatch');
    await expectCode(events.verifyEventToken(token, undefined, { audience: CONSUMER }), 'payload_mismatch');
  });

  it('rejects a consumer outside the audience', async () => {
    const token = await signToken(key, eventClaims());
    await expectCode(events.verifyEventToken(token, payload, { audience: 'https://ledger.api.test' }), 'wrong_audience');
  });

  it('rejects a token without the required resume scope', async () => {
    const token = await signToken(key, eventClaims({ scope: 'resume_orders' }));
    const error = await expectCode(
      events.verifyEventToken(token, payload, { audience: CONSUMER, requiredScope: 'resume_billing' }),
      'insufficient_scope',
    );
    expect(error.status).toBe(403);
    const multi = await signToken(key, eventClaims({ scope: 'resume_orders resume_billing' }));
    await expect(
      events.verifyEventToken(multi, payload, { audience: CONSUMER, requiredScope: 'resume_billing' }),
    ).resolves.toMatchObject({ scope: ['resume_orders', 'resume_billing'] });
  });

  it('rejects tokens that carry a non-resume scope or no scope', async () => {
    for (const scope of ['orders resume_orders', 'orders', undefined, '']) {
      const token = await signToken(key, eventClaims({ scope }));
      await expectCode(events.verifyEventToken(token, payload, { audience: CONSUMER }), 'insufficient_scope');
    }
  });

  it('rejects a missing or malformed event_payload_hash', async () => {
    const hash = eventPayloadHash(payload);
    for (const event_payload_hash of [undefined, '', `${hash}=`, hash.slice(1), hash.replace(/[-_]/g, '+'), 42]) {
      const token = await signToken(key, eventClaims({ event_payload_hash }));
      await expectCode(events.verifyEventToken(token, payload, { audience: CONSUMER }), 'invalid_payload_hash');
    }
  });

  it('applies the JWT checks: signature, issuer, expiry, typ, sub', async () => {
    await expectCode(
      events.verifyEventToken(await signToken(otherKey, eventClaims(), { kid: key.kid }), payload, { audience: CONSUMER }),
      'invalid_token',
    );
    await expectCode(
      events.verifyEventToken(await signToken(otherKey, eventClaims()), payload, { audience: CONSUMER }),
      'unknown_key',
    );
    await expectCode(
      events.verifyEventToken(await signToken(key, eventClaims({ iss: 'https://evil.test' })), payload, {
        audience: CONSUMER,
      }),
      'wrong_issuer',
    );
    await expectCode(
      events.verifyEventToken(
        await signToken(key, eventClaims({ iat: nowSec() - 7200, exp: nowSec() - 3600 })),
        payload,
        { audience: CONSUMER },
      ),
      'token_expired',
    );
    await expectCode(
      events.verifyEventToken(await signToken(key, eventClaims(), { typ: 'secevent+jwt' }), payload, {
        audience: CONSUMER,
      }),
      'invalid_token',
    );
    await expectCode(
      events.verifyEventToken(await signToken(key, eventClaims({ sub: undefined })), payload, { audience: CONSUMER }),
      'invalid_token',
    );
  });

  it('rejects programmer errors in options with TypeError', async () => {
    const token = await signToken(key, eventClaims());
    await expect(events.verifyEventToken(token, payload, { audience: '' })).rejects.toThrow(TypeError);
    await expect(
      events.verifyEventToken(token, payload, { audience: CONSUMER, requiredScope: 'orders' }),
    ).rejects.toThrow(TypeError);
  });

  it('is available as a one-shot free function', async () => {
    const token = await signToken(key, eventClaims());
    await expect(
      verifyEventToken(token, payload, {
        issuer: ISSUER,
        audience: CONSUMER,
        requiredScope: 'resume_orders',
        jwks: jwksOf(key),
      }),
    ).resolves.toMatchObject({ sub: 'user-123' });
    await expectCode(
      verifyEventToken(token, { ...payload, total: 1 }, { issuer: ISSUER, audience: CONSUMER, jwks: jwksOf(key) }),
      'payload_mismatch',
    );
  });
});
