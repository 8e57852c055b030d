import type { X509Certificate } from 'node:crypto';
import { x509 } from './x509.js';

/** The tls_client_auth subject metadata names of RFC 8705 §2.1.2. */
export type TlsClientAuthSubjectProperty =
  | 'tls_client_auth_subject_dn'
  | 'tls_client_auth_san_dns'
  | 'tls_client_auth_san_uri'
  | 'tls_client_auth_san_ip'
  | 'tls_client_auth_san_email';

const SAN_TYPE: Record<Exclude<TlsClientAuthSubjectProperty, 'tls_client_auth_subject_dn'>, string> = {
  tls_client_auth_san_dns: 'dns',
  tls_client_auth_san_uri: 'url',
  tls_client_auth_san_ip: 'ip',
  tls_client_auth_san_email: 'email',
};

function normalizeDn(dn: string): string {
  return dn
    .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    .map((part) => part.trim().replace(/\s*=\s*/, '='))
    .join(',')
    .toLowerCase();
}

/**
 * Whether the certificate's subject matches the registered value (RFC 8705 §2.1.2): a SAN entry
 * of the registered type equal to the value, or, for `tls_client_auth_subject_dn`, the RFC 4514
 * subject DN. Synchronous, for oidc-provider's `certificateSubjectMatches` hook.
 */
export function certificateSubjectMatches(cert: X509Certificate, property: string, expected: string): boolean {
  const parsed = new x509.X509Certificate(cert.raw);
  if (property === 'tls_client_auth_subject_dn') return normalizeDn(parsed.subject) === normalizeDn(expected);
  const type = SAN_TYPE[property as keyof typeof SAN_TYPE];
  if (!type) return false;
  const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return false;
  return san.names.items.some((name) => {
    if (name.type !== type) return false;
    if (type === 'dns' || type === 'email') return name.value.toLowerCase() === expected.toLowerCase();
    return name.value === expected;
  });
}
