import { X509Certificate, createHash } from 'node:crypto';

/**
 * The RFC 8705 §3.1 certificate thumbprint `x5t#S256`: the base64url-encoded
 * (unpadded) SHA-256 hash of the DER encoding of the X.509 certificate.
 *
 * Accepts a PEM certificate (the first one if the text holds several), a bare
 * base64 DER string (a JWK `x5c` entry, RFC 7517 §4.7), DER bytes, or a
 * `node:crypto` `X509Certificate` (e.g. `tlsSocket.getPeerX509Certificate()`).
 * Synchronous: it runs inside oidc-provider's synchronous mTLS hooks.
 */
export function x5tS256(cert: string | Uint8Array | X509Certificate): string {
  return createHash('sha256').update(toDer(cert)).digest('base64url');
}

function toDer(cert: string | Uint8Array | X509Certificate): Uint8Array {
  if (cert instanceof X509Certificate) return cert.raw;
  if (typeof cert !== 'string') return cert;
  if (cert.includes('-----BEGIN')) return new X509Certificate(cert).raw;
  return Buffer.from(cert.replace(/\s+/g, ''), 'base64');
}
