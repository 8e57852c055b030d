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

/** Attribute types and values, lower-cased, in certificate (ASN.1 encoding) order. */
function rdnSequence(name: InstanceType<typeof x509.Name>): string {
  return JSON.stringify(name.toJSON()).toLowerCase();
}

/**
 * RFC 4514 writes a DN's RDNs last-to-first relative to the certificate's encoding, while
 * @peculiar/x509 parses and prints them in encoding order; reverse the registered string.
 */
function subjectDnMatches(cert: InstanceType<typeof x509.X509Certificate>, expected: string): boolean {
  let registered: InstanceType<typeof x509.Name>;
  try {
    // Attribute type names are case-insensitive (RFC 4514 §3); the parser knows them upper-case.
    registered = new x509.Name(expected.replace(/(^|,)(\s*)([A-Za-z][A-Za-z0-9-]*)(\s*=)/g, (_m, sep: string, ws: string, type: string, eq: string) => `${sep}${ws}${type.toUpperCase()}${eq}`));
  } catch {
    return false;
  }
  const reversed = new x509.Name(registered.toJSON().reverse());
  return rdnSequence(reversed) === rdnSequence(cert.subjectName);
}

/**
 * Whether the certificate's subject matches the registered value (RFC 8705 §2.1.2): a SAN entry
 * of the registered type equal to the value, or, for `tls_client_auth_subject_dn`, the subject DN
 * written as an RFC 4514 string (most specific RDN first, e.g. `CN=svc,O=Acme,C=US`). Synchronous, for oidc-provider's `certificateSubjectMatches` hook.
 */
export function certificateSubjectMatches(cert: X509Certificate, property: string, expected: string): boolean {
  const parsed = new x509.X509Certificate(cert.raw);
  if (property === 'tls_client_auth_subject_dn') return subjectDnMatches(parsed, expected);
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
