import { X509Certificate, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { issueCertificate, type IssuedCertificate } from '../../../src/pki/issue.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';

/** RFC 8705 §3.1 computed independently: strip the PEM armour, SHA-256 the DER with WebCrypto, base64url. */
async function independentThumbprint(pem: string): Promise<string> {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
  const digest = await webcrypto.subtle.digest('SHA-256', der);
  return Buffer.from(digest).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

describe('x5tS256', () => {
  let leaf: IssuedCertificate;
  let expected: string;

  beforeAll(async () => {
    const ca = await createCertificateAuthority({ commonName: 'Thumbprint CA', validityDays: 30 });
    leaf = await issueCertificate(ca, { commonName: 'svc', dns: ['svc.test'], usage: 'client', validityDays: 1 });
    expected = await independentThumbprint(leaf.certificatePem);
  });

  it('is base64url(SHA-256(DER)) for PEM, DER bytes, base64 DER and node X509Certificate', () => {
    const cert = new X509Certificate(leaf.certificatePem);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(x5tS256(leaf.certificatePem)).toBe(expected);
    expect(x5tS256(cert.raw)).toBe(expected);
    expect(x5tS256(new Uint8Array(cert.raw))).toBe(expected);
    expect(x5tS256(cert.raw.toString('base64'))).toBe(expected);
    expect(x5tS256(cert)).toBe(expected);
  });

  it('matches the thumbprint returned by issueCertificate', () => {
    expect(leaf.x5tS256).toBe(expected);
  });

  it('uses the first certificate of a PEM bundle', async () => {
    const other = await createCertificateAuthority({ commonName: 'Other', validityDays: 1 });
    expect(x5tS256(leaf.certificatePem + other.certificatePem)).toBe(expected);
  });
});
