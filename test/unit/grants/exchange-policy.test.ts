import { describe, expect, it } from 'vitest';
import type { ExchangePolicy } from '../../../src/config/files.js';
import { decideExchange, isResumeOnly, type ExchangeRequest } from '../../../src/grants/token-exchange/exchange-policy.js';

const EVENTS = 'https://events.custos.test/orders';
const ORDERS = 'https://api.custos.test/orders';
const policy: ExchangePolicy = {
  client_id: 'orders-api',
  scopes: { resume_orders: { lifetime: 3600 }, resume_refunds: { lifetime: 600 } },
  audiences: [EVENTS, 'https://events.custos.test/audit'],
  default_audience: EVENTS,
};
const now = 1_800_000_000;

function request(overrides: Partial<ExchangeRequest> = {}, subject: Partial<ExchangeRequest['subject']> = {}): ExchangeRequest {
  return {
    clientId: 'orders-api',
    serves: [ORDERS],
    requestedScopes: undefined,
    requestedAudiences: [],
    now,
    ...overrides,
    subject: { sub: 'alice', clientId: 'web-bff', aud: [ORDERS], scopes: ['orders', 'refunds'], exp: now + 300, ...subject },
  };
}

function errorOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as { error?: string }).error;
  }
}

describe('decideExchange', () => {
  it('refuses a DPoP-bound subject token unless the policy accepts them (RFC 9449 §6.1 cnf.jkt)', () => {
    const bound = request({}, { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' });
    expect(errorOf(() => decideExchange(policy, bound))).toBe('invalid_request');
    expect(errorOf(() => decideExchange({ ...policy, accept_dpop_bound_subject_tokens: false }, bound))).toBe('invalid_request');
    expect(decideExchange({ ...policy, accept_dpop_bound_subject_tokens: true }, bound).scopes).toEqual(['resume_orders', 'resume_refunds']);
  });

  it('defaults to every eligible resume scope, the default audience and the shortest lifetime', () => {
    expect(decideExchange(policy, request())).toEqual({ scopes: ['resume_orders', 'resume_refunds'], audiences: [EVENTS], lifetime: 600 });
    expect(decideExchange(policy, request({ requestedScopes: ['resume_orders'] })).lifetime).toBe(3600);
  });

  it('maps each rule to its RFC 8693 error', () => {
    expect(errorOf(() => decideExchange(undefined, request()))).toBe('unauthorized_client');
    expect(errorOf(() => decideExchange(policy, request({ serves: ['https://other'] })))).toBe('invalid_request');
    expect(errorOf(() => decideExchange(policy, request({}, { sub: 'web-bff' })))).toBe('invalid_request');
    expect(errorOf(() => decideExchange(policy, request({ requestedScopes: ['orders'] })))).toBe('invalid_scope');
    expect(errorOf(() => decideExchange(policy, request({ requestedScopes: ['resume_billing'] })))).toBe('invalid_scope');
    expect(errorOf(() => decideExchange(policy, request({ requestedScopes: ['resume_orders'] }, { scopes: ['orders:read'] })))).toBe('invalid_scope');
    expect(errorOf(() => decideExchange(policy, request({}, { scopes: ['profile'] })))).toBe('invalid_scope');
    expect(errorOf(() => decideExchange(policy, request({ requestedAudiences: ['https://elsewhere'] })))).toBe('invalid_target');
    expect(errorOf(() => decideExchange({ ...policy, default_audience: undefined }, request()))).toBe('invalid_target');
  });

  it('narrows chained exchanges and caps them at the parent token expiry', () => {
    const parent = { aud: [EVENTS], scopes: ['resume_orders', 'resume_refunds'], exp: now + 120, act: { sub: 'orders-api' }, eventPayloadHash: 'h' };
    const chained = request({ serves: [EVENTS], requestedScopes: ['resume_orders'] }, parent);
    expect(decideExchange(policy, chained)).toEqual({ scopes: ['resume_orders'], audiences: [EVENTS], lifetime: 120 });
    expect(errorOf(() => decideExchange(policy, request({ serves: [EVENTS], requestedScopes: ['resume_orders'] }, { ...parent, scopes: ['resume_refunds'] })))).toBe('invalid_scope');
  });

  it('recognises resume-only scope sets', () => {
    expect(isResumeOnly(['resume_orders'])).toBe(true);
    expect(isResumeOnly(['resume_orders', 'orders'])).toBe(false);
    expect(isResumeOnly([])).toBe(false);
  });
});
