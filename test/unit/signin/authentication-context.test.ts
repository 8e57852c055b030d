import { describe, expect, it } from 'vitest';
import { acrOf, addFactor, requiredAcr } from '../../../src/signin/authentication-context.js';
import { newRecoveryCodes, parseRecoveryCode, totpStep } from '../../../src/signin/one-time-codes.js';
import { ACR_MFA, ACR_PHR, ACR_PWD } from '../../../src/verify/acr.js';

describe('amr and acr (RFC 8176)', () => {
  it('adds mfa once two kinds of factor were used, and derives the acr', () => {
    expect(addFactor([], 'pwd')).toEqual(['pwd']);
    expect(addFactor(['pwd'], 'otp')).toEqual(['pwd', 'otp', 'mfa']);
    expect(addFactor(['pwd', 'otp', 'mfa'], 'otp')).toEqual(['pwd', 'otp', 'mfa']);
    expect(addFactor(['pwd'], 'hwk', ['user'])).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    expect(acrOf(['pwd'])).toBe(ACR_PWD);
    expect(acrOf(['pwd', 'otp', 'mfa'])).toBe(ACR_MFA);
    expect(acrOf(['swk', 'user', 'mfa'])).toBe(ACR_PHR);
    // A key without user verification is not phishing-resistant sign-in here.
    expect(acrOf(['hwk'])).toBe(ACR_PWD);
  });

  it('requires the weakest listed known acr, raised by the client policy', () => {
    expect(requiredAcr(undefined, undefined)).toBeUndefined();
    expect(requiredAcr('urn:other urn:custos:acr:phr urn:custos:acr:mfa', {})).toBe(ACR_MFA);
    expect(requiredAcr('urn:other', {})).toBeUndefined();
    expect(requiredAcr(ACR_PWD, { require_mfa: true })).toBe(ACR_MFA);
    expect(requiredAcr(ACR_MFA, { minimum_acr: ACR_PHR })).toBe(ACR_PHR);
    expect(requiredAcr(undefined, { minimum_acr: 'nonsense' })).toBeUndefined();
  });
});

describe('one-time codes', () => {
  it('recovery codes: ten distinct, unambiguous, parsed in any case and spacing', () => {
    const codes = newRecoveryCodes();
    expect(new Set(codes).size).toBe(10);
    expect(new Set(codes.map((code) => code.slice(0, 4))).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}$/);
    expect(parseRecoveryCode(` ${codes[0]!.toLowerCase().replaceAll('-', ' ')} `)).toEqual({ lookup: codes[0]!.slice(0, 4), normalized: codes[0]!.replaceAll('-', '') });
    expect(parseRecoveryCode('0000-1111-OOOO-IIII')).toBeUndefined();
    expect(parseRecoveryCode('ABCD')).toBeUndefined();
  });

  it('a TOTP code (RFC 6238 test vector secret) is valid for its step, one step either side, not beyond', () => {
    // RFC 6238 Appendix B: SHA-1 secret "12345678901234567890", T = 59 s → 94287082 (8 digits); 6 digits: 287082.
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    expect(totpStep(secret, '287082', 59_000)).toBe(1);
    expect(totpStep(secret, '287082', 89_000)).toBe(1);
    expect(totpStep(secret, '287082', 150_000)).toBeUndefined();
    expect(totpStep(secret, '28708', 59_000)).toBeUndefined();
    expect(totpStep(secret, '287 082', 59_000)).toBe(1);
  });
});
