import { P256_ORDER, lowSEs256Signature } from '../../src/verify/es256-signature.js';

function withSignature(compact: string, map: (signature: Uint8Array) => Uint8Array): string {
  const last = compact.lastIndexOf('.');
  const signature = Buffer.from(compact.slice(last + 1), 'base64url');
  return `${compact.slice(0, last + 1)}${Buffer.from(map(signature)).toString('base64url')}`;
}

/** The compact ES256 JWS with its signature in the low-S form Custos verifiers accept (jose/WebCrypto sign either form). */
export function lowS(compact: string): string {
  return withSignature(compact, lowSEs256Signature);
}

/** The same ES256 JWS with S replaced by n − S: a signature that verifies with jose/node:crypto, but not canonical. */
export function flipS(compact: string): string {
  return withSignature(compact, (signature) => {
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`);
    return Buffer.concat([signature.subarray(0, 32), Buffer.from((P256_ORDER - s).toString(16).padStart(64, '0'), 'hex')]);
  });
}

/**
 * The same compact JWS with one bit of its signature flipped: always a different signature.
 * (Rewriting the last base64url characters is not: about one signature in 256 already ends in
 * the replacement, and a last character's padding bits decode to nothing.)
 */
export function tamperSignature(compact: string): string {
  return withSignature(compact, (signature) => {
    const tampered = Uint8Array.from(signature);
    tampered[Math.floor(tampered.length / 2)]! ^= 0x01;
    return tampered;
  });
}
