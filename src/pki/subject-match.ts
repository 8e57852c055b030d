import type { X509Certificate } from 'node:crypto';
import { certificateFacts, rdnSequence, type CertificateFacts, type SanType } from './certificate-facts.js';
import { x509 } from './x509.js';

/** The tls_client_auth subject metadata names of RFC 8705 §2.1.2. */
export type TlsClientAuthSubjectProperty =
  | 'tls_client_auth_subject_dn'
  | 'tls_client_auth_san_dns'
  | 'tls_client_auth_san_uri'
  | 'tls_client_auth_san_ip'
  | 'tls_client_auth_san_email';

const SAN_TYPE: Record<Exclude<TlsClientAuthSubjectProperty, 'tls_client_auth_subject_dn'>, SanType> = {
  tls_client_auth_san_dns: 'dns',
  tls_client_auth_san_uri: 'url',
  tls_client_auth_san_ip: 'ip',
  tls_client_auth_san_email: 'email',
};

/**
 * A registered RFC 4514 DN string as an RDN sequence comparable with {@link CertificateFacts.subject},
 * or `undefined` when it does not parse. RFC 4514 writes RDNs last-to-first relative to the
 * certificate's encoding, while @peculiar/x509 keeps encoding order: the registered string is reversed.
 */
export function registeredSubject(expected: string): string | undefined {
  try {
    // Attribute type names are case-insensitive (RFC 4514 §3); the parser knows them upper-case.
    const registered = new x509.Name(expected.replace(/(^|,)(\s*)([A-Za-z][A-Za-z0-9-]*)(\s*=)/g, (_m, sep: string, ws: string, type: string, eq: string) => `${sep}${ws}${type.toUpperCase()}${eq}`));
    return rdnSequence(new x509.Name(registered.toJSON().reverse()));
  } catch {
    return undefined;
  }
}

/**
 * Whether a certificate's facts match the registered value (RFC 8705 §2.1.2): a SAN entry of the
 * registered type equal to the value (DNS names and e-mail addresses case-insensitively), or, for
 * `tls_client_auth_subject_dn`, the subject DN given as its normalised RDN sequence
 * (see {@link registeredSubject}).
 */
export function subjectMatches(facts: CertificateFacts, property: string, expected: string, subject = registeredSubject): boolean {
  if (property === 'tls_client_auth_subject_dn') {
    const registered = subject(expected);
    return registered !== undefined && registered === facts.subject;
  }
  const type = SAN_TYPE[property as keyof typeof SAN_TYPE];
  if (!type) return false;
  const folded = type === 'dns' || type === 'email';
  const wanted = folded ? expected.toLowerCase() : expected;
  return facts.san[type].some((value) => (folded ? value.toLowerCase() : value) === wanted);
}

/**
 * Whether the certificate's subject matches the registered value (RFC 8705 §2.1.2): a SAN entry
 * of the registered type equal to the value, or, for `tls_client_auth_subject_dn`, the subject DN
 * written as an RFC 4514 string (most specific RDN first, e.g. `CN=svc,O=Acme,C=US`). Parses the
 * certificate on every call; the mTLS hook uses the per-connection cache instead.
 */
export function certificateSubjectMatches(cert: X509Certificate, property: string, expected: string): boolean {
  return subjectMatches(certificateFacts(cert), property, expected);
}
