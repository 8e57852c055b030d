import { X509Certificate, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateSubjectMatches } from '../../../src/pki/subject-match.js';
import { x509 } from '../../../src/pki/x509.js';

async function certificate(name: string, san: x509.JsonGeneralName[]): Promise<X509Certificate> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension(san)],
  });
  return new X509Certificate(Buffer.from(cert.rawData));
}

describe('certificateSubjectMatches (RFC 8705 §2.1.2)', () => {
  it('matches tls_client_auth_subject_dn written as an RFC 4514 string', async () => {
    // Encoded C, O, CN: RFC 4514 writes it CN first.
    const cert = await certificate('C=US, O=Acme, CN=svc', []);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_subject_dn', 'CN=svc,O=Acme,C=US')).toBe(true);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_subject_dn', 'cn=SVC, o=acme, c=us')).toBe(true);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_subject_dn', 'CN=svc,O=Other,C=US')).toBe(false);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_subject_dn', 'CN=svc')).toBe(false);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_subject_dn', 'not a dn')).toBe(false);
  });

  it('matches SAN entries of the registered type only', async () => {
    const cert = await certificate('CN=orders-api', [
      { type: 'dns', value: 'orders-api.clients.custos.test' },
      { type: 'url', value: 'spiffe://custos.test/client/orders-api' },
      { type: 'ip', value: '10.0.0.7' },
    ]);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_dns', 'ORDERS-API.clients.custos.test')).toBe(true);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_uri', 'spiffe://custos.test/client/orders-api')).toBe(true);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_ip', '10.0.0.7')).toBe(true);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_dns', 'spiffe://custos.test/client/orders-api')).toBe(false);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_uri', 'spiffe://custos.test/client/billing-worker')).toBe(false);
    expect(certificateSubjectMatches(cert, 'tls_client_auth_san_email', 'a@b.c')).toBe(false);
    expect(certificateSubjectMatches(cert, 'unknown_property', 'x')).toBe(false);
  });
});
