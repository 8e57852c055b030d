import { createHash, type X509Certificate } from 'node:crypto';
import { x509 } from './x509.js';

/** SAN types of RFC 8705 §2.1.2, as @peculiar/x509 names them. */
export type SanType = 'dns' | 'url' | 'ip' | 'email';

/** What Custos derives from a client certificate; computed once per certificate (by its DER). */
export interface CertificateFacts {
  /** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the DER. */
  readonly thumbprint: string;
  /** Subject alternative names by type, in certificate order. */
  readonly san: Readonly<Record<SanType, readonly string[]>>;
  /** The subject's RDN sequence, normalised (attribute types and values lower-cased), in encoding order. */
  readonly subject: string;
}

/** Attribute types and values, lower-cased, in certificate (ASN.1 encoding) order. */
export function rdnSequence(name: InstanceType<typeof x509.Name>): string {
  return JSON.stringify(name.toJSON()).toLowerCase();
}

/** Parses a certificate (asn1js, the expensive part) and extracts its {@link CertificateFacts}. */
export function certificateFacts(cert: X509Certificate, thumbprint = createHash('sha256').update(cert.raw).digest('base64url')): CertificateFacts {
  const parsed = new x509.X509Certificate(cert.raw);
  const san: Record<SanType, string[]> = { dns: [], url: [], ip: [], email: [] };
  for (const name of parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []) {
    if (name.type in san) san[name.type as SanType].push(name.value);
  }
  return Object.freeze({ thumbprint, san: Object.freeze(san), subject: rdnSequence(parsed.subjectName) });
}

/**
 * A bounded cache of {@link CertificateFacts}: by certificate object (a keep-alive connection
 * hands the same object to every request, see the clientCertificate middleware) and, for a new
 * connection or a proxy header, by DER thumbprint in a least-recently-used map of `max` entries.
 * A different certificate has a different DER, hence different facts: nothing is shared across
 * certificates.
 */
export function createCertificateFactsCache(options: { max?: number } = {}): (cert: X509Certificate) => CertificateFacts {
  const max = options.max ?? 1024;
  const byObject = new WeakMap<X509Certificate, CertificateFacts>();
  const byDer = new Map<string, CertificateFacts>();
  return (cert) => {
    let facts = byObject.get(cert);
    if (facts) return facts;
    const thumbprint = createHash('sha256').update(cert.raw).digest('base64url');
    facts = byDer.get(thumbprint);
    if (facts) {
      byDer.delete(thumbprint);
    } else {
      facts = certificateFacts(cert, thumbprint);
      if (byDer.size >= max) byDer.delete(byDer.keys().next().value!);
    }
    byDer.set(thumbprint, facts);
    byObject.set(cert, facts);
    return facts;
  };
}
