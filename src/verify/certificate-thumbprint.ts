import { X509Certificate, createHash } from 'node:crypto';

/**
 * A client certificate as a resource server may hold it: a `node:crypto`
 * `X509Certificate` (e.g. `tlsSocket.getPeerX509Certificate()`), its DER bytes
 * (e.g. `tlsSocket.getPeerCertificate().raw`), or PEM text (e.g. a header set
 * by a trusted TLS-terminating proxy, already URL-decoded).
 */
export type ClientCertificateInput = X509Certificate | Uint8Array | string;

/**
 * The RFC 8705 §3.1 `x5t#S256` certificate thumbprint: base64url (no padding)
 * of the SHA-256 of the certificate's DER encoding.
 *
 * PEM input is parsed (the first certificate wins); DER bytes are hashed as
 * given. Throws a `TypeError` when PEM text is not a certificate.
 */
export function certificateThumbprint(certificate: ClientCertificateInput): string {
  return createHash('sha256').update(certificateDer(certificate)).digest('base64url');
}

function certificateDer(certificate: ClientCertificateInput): Uint8Array {
  if (certificate instanceof X509Certificate) return certificate.raw;
  if (certificate instanceof Uint8Array) return certificate;
  if (typeof certificate === 'string') {
    try {
      return new X509Certificate(certificate).raw;
    } catch (cause) {
      throw new TypeError('client certificate is not a PEM-encoded X.509 certificate', { cause });
    }
  }
  throw new TypeError('client certificate must be an X509Certificate, DER bytes or PEM text');
}
