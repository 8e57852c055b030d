import { createHash, X509Certificate, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateFacts, createCertificateFactsCache } from '../../../src/pki/certificate-facts.js';
import { x509 } from '../../../src/pki/x509.js';

async function certificate(name: string, dns: string): Promise<X509Certificate> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: dns }])],
  });
  return new X509Certificate(Buffer.from(cert.rawData));
}

describe('certificate facts', () => {
  it('derives the x5t#S256 thumbprint, the SANs and the subject from the certificate', async () => {
    const cert = await certificate('CN=a', 'a.clients.test');
    const facts = certificateFacts(cert);
    expect(facts.thumbprint).toBe(createHash('sha256').update(cert.raw).digest('base64url'));
    expect(facts.san.dns).toEqual(['a.clients.test']);
    expect(facts.san.url).toEqual([]);
    expect(facts.subject).toContain('"a"');
  });

  it('caches by certificate object and by DER, and never hands one certificate\'s facts to another', async () => {
    const cache = createCertificateFactsCache({ max: 2 });
    const a = await certificate('CN=a', 'a.clients.test');
    const b = await certificate('CN=b', 'b.clients.test');
    const first = cache(a);
    expect(cache(a)).toBe(first);
    // Same DER, another object (a new connection presenting the same certificate).
    expect(cache(new X509Certificate(a.raw))).toBe(first);
    const other = cache(b);
    expect(other).not.toBe(first);
    expect(other.thumbprint).not.toBe(first.thumbprint);
    expect(other.san.dns).toEqual(['b.clients.test']);
  });

  it('stays bounded: the least recently used DER is evicted and recomputed when it returns', async () => {
    const cache = createCertificateFactsCache({ max: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => certificate(`CN=${name}`, `${name}.clients.test`)));
    const factsA = cache(a!);
    cache(b!);
    cache(new X509Certificate(a!.raw)); // a is now the most recently used
    cache(c!); // evicts b
    expect(cache(new X509Certificate(a!.raw))).toBe(factsA);
    const againB = cache(new X509Certificate(b!.raw));
    expect(againB.san.dns).toEqual(['b.clients.test']);
    expect(againB.thumbprint).toBe(createHash('sha256').update(b!.raw).digest('base64url'));
  });
});
