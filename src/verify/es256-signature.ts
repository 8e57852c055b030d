import { errors } from 'jose';

/** The order n of the P-256 base point (FIPS 186-5 / SEC 2 §2.4.2, curve secp256r1). */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_ORDER = P256_ORDER >> 1n;
/** An ES256 JWS signature is R ‖ S, each a 32-byte big-endian integer (RFC 7518 §3.4). */
const ES256_SIGNATURE_BYTES = 64;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/**
 * Whether an ES256 signature (RFC 7518 §3.4: R ‖ S, 64 bytes) has the one canonical form of
 * its two valid forms: ECDSA accepts (R, S) and (R, n − S) alike, so a third party can turn a
 * valid token into a different string that still verifies (signature malleability). Canonical
 * means exactly 64 bytes, 0 < R < n and 0 < S ≤ n/2 ("low S"): the form Custos signs in
 * ({@link lowSEs256Signature}; `node:crypto` and WebCrypto return either form).
 */
export function isCanonicalEs256Signature(signature: Uint8Array): boolean {
  if (signature.length !== ES256_SIGNATURE_BYTES) return false;
  const r = toBigInt(signature.subarray(0, 32));
  const s = toBigInt(signature.subarray(32));
  return r > 0n && r < P256_ORDER && s > 0n && s <= HALF_ORDER;
}

/**
 * The canonical (low-S) form of a valid ES256 signature: (R, n − S) when S > n/2, else the
 * signature itself. Signers call it, since `node:crypto` and WebCrypto return either form.
 */
export function lowSEs256Signature(signature: Uint8Array): Uint8Array {
  if (signature.length !== ES256_SIGNATURE_BYTES) return signature;
  const s = toBigInt(signature.subarray(32));
  if (s <= HALF_ORDER) return signature;
  const out = new Uint8Array(ES256_SIGNATURE_BYTES);
  out.set(signature.subarray(0, 32));
  out.set(Buffer.from((P256_ORDER - s).toString(16).padStart(64, '0'), 'hex'), 32);
  return out;
}

/**
 * Refuses an RFC 7515 §7.1 compact JWS whose ES256 signature is not canonical
 * ({@link isCanonicalEs256Signature}): not 64 bytes, or high S. Every place Custos and
 * `custos/verify` verify an ES256 JWT calls it, so a token has exactly one accepted spelling.
 * Throws jose's `JWSSignatureVerificationFailed` (the callers' "bad signature" path).
 */
export function assertCanonicalEs256Signature(compactJws: string): void {
  const last = compactJws.lastIndexOf('.');
  const encoded = last === -1 ? '' : compactJws.slice(last + 1);
  if (!BASE64URL.test(encoded) || !isCanonicalEs256Signature(Buffer.from(encoded, 'base64url'))) {
    throw new errors.JWSSignatureVerificationFailed('ES256 signature must be 64 bytes with S ≤ n/2 (low-S form)');
  }
}
