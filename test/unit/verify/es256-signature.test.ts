import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { errors } from 'jose';
import { describe, expect, it } from 'vitest';
import { assertCanonicalEs256Signature, isCanonicalEs256Signature, lowSEs256Signature, P256_ORDER } from '../../../src/verify/es256-signature.js';
import { flipS } from '../../helpers/jws.js';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicKey = createPublicKey(privateKey);
const DATA = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9');

const sBig = (signature: Uint8Array) => BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`);
const p1363 = (key = privateKey) => sign('sha256', DATA, { key, dsaEncoding: 'ieee-p1363' });
const verifies = (signature: Uint8Array) => verify('sha256', DATA, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
const jws = (signature: Uint8Array) => `${DATA.toString('ascii')}.${Buffer.from(signature).toString('base64url')}`;

/** node:crypto signs high S about half the time: sign until one of each form turns up. */
function signatures(): { low: Buffer; high: Buffer } {
  let low: Buffer | undefined;
  let high: Buffer | undefined;
  while (!low || !high) {
    const signature = p1363();
    if (sBig(signature) > P256_ORDER / 2n) high ??= signature;
    else low ??= signature;
  }
  return { low, high };
}

describe('ES256 signature canonical form (low S)', () => {
  it('accepts a low-S signature and refuses its high-S twin, although both verify with node:crypto', () => {
    const { low } = signatures();
    const twin = Buffer.from(flipS(jws(low)).split('.')[2]!, 'base64url');
    expect(verifies(low)).toBe(true);
    expect(verifies(twin)).toBe(true);
    expect(isCanonicalEs256Signature(low)).toBe(true);
    expect(isCanonicalEs256Signature(twin)).toBe(false);
    expect(() => assertCanonicalEs256Signature(jws(low))).not.toThrow();
    expect(() => assertCanonicalEs256Signature(jws(twin))).toThrow(errors.JWSSignatureVerificationFailed);
  });

  it('lowSEs256Signature turns a high-S signature into its verifying low-S twin and leaves a low-S one as it is', () => {
    const { low, high } = signatures();
    expect(isCanonicalEs256Signature(high)).toBe(false);
    const fixed = lowSEs256Signature(high);
    expect(isCanonicalEs256Signature(fixed)).toBe(true);
    expect(verifies(fixed)).toBe(true);
    expect(Buffer.from(fixed.subarray(0, 32))).toEqual(high.subarray(0, 32));
    expect(lowSEs256Signature(low)).toBe(low);
  });

  it('the boundary: S = n/2 (rounded down) is canonical, S = n/2 + 1 is not; S = 0, R = 0 and R ≥ n are refused', () => {
    const of = (r: bigint, s: bigint) => Buffer.from(r.toString(16).padStart(64, '0') + s.toString(16).padStart(64, '0'), 'hex');
    const half = P256_ORDER >> 1n;
    expect(isCanonicalEs256Signature(of(1n, half))).toBe(true);
    expect(isCanonicalEs256Signature(of(1n, half + 1n))).toBe(false);
    expect(isCanonicalEs256Signature(of(1n, 0n))).toBe(false);
    expect(isCanonicalEs256Signature(of(0n, 1n))).toBe(false);
    expect(isCanonicalEs256Signature(of(P256_ORDER, 1n))).toBe(false);
  });

  it('refuses a signature that is not exactly 64 bytes (DER, truncated, padded, empty) and a compact JWS without one', () => {
    const { low } = signatures();
    const der = sign('sha256', DATA, { key: privateKey, dsaEncoding: 'der' });
    for (const bad of [der, low.subarray(0, 63), Buffer.concat([low, Buffer.alloc(1)]), Buffer.alloc(0)]) {
      expect(isCanonicalEs256Signature(bad)).toBe(false);
      expect(() => assertCanonicalEs256Signature(jws(bad))).toThrow(errors.JWSSignatureVerificationFailed);
    }
    for (const compact of ['', 'no-dots', `${DATA.toString('ascii')}.not base64url!`]) {
      expect(() => assertCanonicalEs256Signature(compact)).toThrow(errors.JWSSignatureVerificationFailed);
    }
  });
});
