import { describe, expect, it } from 'vitest';
import { dpopFeature } from '../../../src/oidc/dpop.js';

describe('dpopFeature', () => {
  it('derives a 32-byte nonce secret from the first cookie key, the same on every instance', () => {
    const a = dpopFeature(['a'.repeat(32), 'b'.repeat(32)]);
    const b = dpopFeature(['a'.repeat(32)]);
    expect(a.nonceSecret).toHaveLength(32);
    expect(a.nonceSecret.equals(b.nonceSecret)).toBe(true);
    expect(a.nonceSecret.equals(dpopFeature(['c'.repeat(32)]).nonceSecret)).toBe(false);
    // Not the cookie key itself.
    expect(a.nonceSecret.toString('latin1')).not.toBe('a'.repeat(32));
    expect(a.requireNonce()).toBe(false);
  });

  it('never makes a secret up without a configured cookie key', () => {
    expect(() => dpopFeature([])).toThrow(/cookie key/);
  });
});
