import { describe, expect, it } from 'vitest';
import { tamperSignature } from '../../helpers/jws.js';

const signatureOf = (compact: string) => Buffer.from(compact.slice(compact.lastIndexOf('.') + 1), 'base64url');

describe('tampering with a JWS in tests changes its signature every time (issue 22 #8)', () => {
  it('also for a signature that already ends in the bytes a naive tamper writes', () => {
    // 64 bytes (an ES256 signature) whose base64url ends in "AA", as about 1 in 256 do.
    const endsInAA = Buffer.alloc(64, 7);
    endsInAA[63] = 0;
    const compact = `eyJhbGciOiJFUzI1NiJ9.e30.${endsInAA.toString('base64url')}`;
    expect(compact.endsWith('AA')).toBe(true);
    expect(signatureOf(tamperSignature(compact)).equals(endsInAA)).toBe(false);
  });

  it('for every signature, and only the signature', () => {
    for (let byte = 0; byte < 256; byte++) {
      const signature = Buffer.alloc(64, byte);
      const compact = `eyJhbGciOiJFUzI1NiJ9.e30.${signature.toString('base64url')}`;
      const tampered = tamperSignature(compact);
      expect(signatureOf(tampered).equals(signature)).toBe(false);
      expect(signatureOf(tampered)).toHaveLength(64);
      expect(tampered.slice(0, tampered.lastIndexOf('.'))).toBe('eyJhbGciOiJFUzI1NiJ9.e30');
    }
  });
});
