import { describe, expect, it } from 'vitest';
import {
  CAEP_CREDENTIAL_CHANGE,
  CAEP_SESSION_REVOKED,
  CAEP_TOKEN_CLAIMS_CHANGE,
  CUSTOS_ACCOUNT_DISABLED,
  CUSTOS_ACCOUNT_ENABLED,
  CUSTOS_CLIENT_DELETED,
  CUSTOS_CLIENT_DISABLED,
  CUSTOS_CLIENT_ENABLED,
  createRevocationState,
  type SecurityEvent,
} from '../../../src/verify/index.js';

const KIND: Record<string, SecurityEvent['kind']> = {
  [CAEP_SESSION_REVOKED]: 'session-revoked',
  [CAEP_TOKEN_CLAIMS_CHANGE]: 'token-claims-change',
  [CAEP_CREDENTIAL_CHANGE]: 'credential-change',
  [CUSTOS_ACCOUNT_DISABLED]: 'account-disabled',
  [CUSTOS_ACCOUNT_ENABLED]: 'account-enabled',
  [CUSTOS_CLIENT_DISABLED]: 'client-disabled',
  [CUSTOS_CLIENT_ENABLED]: 'client-enabled',
  [CUSTOS_CLIENT_DELETED]: 'client-deleted',
};

function clientEvent(id: string, type: string, at: number, clientId = 'reporting-job'): SecurityEvent {
  return { ...event(id, type, at, { client_id: clientId }, clientId), clientId };
}

function event(id: string, type: string, at: number, extra: Record<string, unknown> = {}, subject = 'u1'): SecurityEvent {
  return { id, issuer: 'https://custos.test', issuedAt: at, subject, type, kind: KIND[type]!, eventTimestamp: at, event: { event_timestamp: at, ...extra }, claims: {} };
}

describe('consumer revocation state', () => {
  it("a disabled or deleted client's tokens are refused, its users' as well; enabling it again brings back only newer tokens", () => {
    const state = createRevocationState();
    expect(() => state.check('u1', 100, undefined, 'reporting-job')).not.toThrow();
    expect(state.apply(clientEvent('cd', CUSTOS_CLIENT_DISABLED, 200))).toBe('applied');
    // A user's token issued to the client, and the client's own client-credentials token (sub = client id).
    expect(() => state.check('u1', 300, undefined, 'reporting-job')).toThrow(expect.objectContaining({ code: 'client_disabled', status: 401 }));
    expect(() => state.check('reporting-job', 150, undefined, 'reporting-job')).toThrow(expect.objectContaining({ code: 'client_disabled' }));
    // Another client's tokens, and the user's own record, are untouched.
    expect(() => state.check('u1', 150, undefined, 'web-bff')).not.toThrow();
    expect(state.get('u1')).toBeUndefined();
    expect(state.apply(clientEvent('old-enable', CUSTOS_CLIENT_ENABLED, 150))).toBe('stale');
    expect(state.getClient('reporting-job')?.disabled).toBe(true);
    expect(state.apply(clientEvent('ce', CUSTOS_CLIENT_ENABLED, 400))).toBe('applied');
    expect(() => state.check('u1', 200, undefined, 'reporting-job')).toThrow(expect.objectContaining({ code: 'client_revoked' }));
    expect(() => state.check('u1', 401, undefined, 'reporting-job')).not.toThrow();
    expect(state.apply(clientEvent('del', CUSTOS_CLIENT_DELETED, 500))).toBe('applied');
    expect(() => state.check('u1', 600, undefined, 'reporting-job')).toThrow(expect.objectContaining({ code: 'client_disabled' }));
    expect(state.apply(clientEvent('del', CUSTOS_CLIENT_DELETED, 500))).toBe('duplicate');
  });

  it('refuses tokens issued at or before a session revocation, accepts later ones', () => {
    const state = createRevocationState();
    expect(() => state.check('u1', 100)).not.toThrow();
    expect(state.apply(event('e1', CAEP_SESSION_REVOKED, 200))).toBe('applied');
    expect(() => state.check('u1', 150)).toThrow(expect.objectContaining({ code: 'subject_revoked', status: 401 }));
    expect(() => state.check('u1', 200)).toThrow(expect.objectContaining({ code: 'subject_revoked' }));
    expect(() => state.check('u1', 201)).not.toThrow();
    expect(() => state.check('u2', 1)).not.toThrow();
    expect(() => state.check(undefined, 1)).not.toThrow();
  });

  it('deduplicates on jti and never moves a revocation back', () => {
    const state = createRevocationState();
    expect(state.apply(event('e1', CAEP_SESSION_REVOKED, 300))).toBe('applied');
    expect(state.apply(event('e1', CAEP_SESSION_REVOKED, 300))).toBe('duplicate');
    expect(state.apply(event('e0', CAEP_SESSION_REVOKED, 100))).toBe('stale');
    expect(state.get('u1')?.revokedAt).toBe(300);
  });

  it('disable wins over an older enable delivered late; enable restores tokens issued after the disable', () => {
    const state = createRevocationState();
    state.apply(event('d', CUSTOS_ACCOUNT_DISABLED, 500));
    expect(state.apply(event('old-enable', CUSTOS_ACCOUNT_ENABLED, 400))).toBe('stale');
    expect(() => state.check('u1', 600)).toThrow(expect.objectContaining({ code: 'subject_disabled' }));
    expect(state.apply(event('enable', CUSTOS_ACCOUNT_ENABLED, 700))).toBe('applied');
    expect(() => state.check('u1', 450)).toThrow(expect.objectContaining({ code: 'subject_revoked' }));
    expect(() => state.check('u1', 701)).not.toThrow();
  });

  it('role changes make older tokens stale; credential revocation revokes', () => {
    const state = createRevocationState();
    state.apply(event('r', CAEP_TOKEN_CLAIMS_CHANGE, 50, { claims: { roles: ['reader'] } }));
    expect(state.get('u1')?.roles).toEqual(['reader']);
    expect(() => state.check('u1', 49)).toThrow(expect.objectContaining({ code: 'claims_changed' }));
    state.apply(event('c', CAEP_CREDENTIAL_CHANGE, 80, { credential_type: 'x509', change_type: 'revoke' }));
    expect(() => state.check('u1', 60)).toThrow(expect.objectContaining({ code: 'subject_revoked' }));
    state.apply(event('p', CAEP_CREDENTIAL_CHANGE, 90, { credential_type: 'password', change_type: 'create' }, 'u3'));
    expect(() => state.check('u3', 10)).not.toThrow();
  });

  it('forgets the oldest event ids past its bound', () => {
    const state = createRevocationState({ maxRememberedEvents: 2 });
    state.apply(event('a', CAEP_SESSION_REVOKED, 1));
    state.apply(event('b', CAEP_SESSION_REVOKED, 2));
    state.apply(event('c', CAEP_SESSION_REVOKED, 3));
    expect(state.apply(event('c', CAEP_SESSION_REVOKED, 3))).toBe('duplicate');
    expect(state.apply(event('a', CAEP_SESSION_REVOKED, 1))).toBe('stale');
  });
});
