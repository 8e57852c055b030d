import type { X509Certificate } from 'node:crypto';
import { certificateThumbprint } from '../verify/certificate-thumbprint.js';

/**
 * The RFC 8705 §3.1 certificate thumbprint `x5t#S256` (see `custos/verify`'s
 * `certificateThumbprint`), also accepting a bare base64 DER string as found in a JWK `x5c`
 * entry (RFC 7517 §4.7). Synchronous: it runs inside oidc-provider's synchronous mTLS hooks.
 */
export function x5tS256(cert: string | Uint8Array | X509Certificate): string {
  if (typeof cert === 'string' && !cert.includes('-----BEGIN')) {
    return certificateThumbprint(Buffer.from(cert.replace(/\s+/g, ''), 'base64'));
  }
  return certificateThumbprint(cert);
}
