import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, type PemKeyPair } from '../../../src/pki/ca.js';
import { createSelfSignedClientCertificate, issueCertificate } from '../../../src/pki/issue.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';
import { x509 } from '../../../src/pki/x509.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

describe('createCertificateAuthority', () => {
  it('creates a self-signed P-256 CA with critical basicConstraints, keyUsage and an SKI', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validityDays: 10 });
    const cert = new x509.X509Certificate(ca.certificatePem);
    expect(cert.subject).toBe('CN=Test CA');
    expect(cert.issuer).toBe('CN=Test CA');
    expect(await cert.isSelfSigned()).toBe(true);

    const basic = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(basic.ca).toBe(true);
    expect(basic.critical).toBe(true);
    const keyUsage = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(keyUsage.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(keyUsage.critical).toBe(true);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);

    expect(ca.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const key = createPrivateKey(ca.privateKeyPem);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(new X509Certificate(ca.certificatePem).checkPrivateKey(key)).toBe(true);
  });

  it('rejects an out-of-range validity', async () => {
    await expect(createCertificateAuthority({ commonName: 'x', validityDays: 0 })).rejects.toThrow(/validityDays/);
  });
});

describe('issueCertificate', () => {
  let ca: PemKeyPair;
  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Issuing CA', validityDays: 30 });
  });

  it('issues a client certificate with EKU clientAuth, SANs, AKI = CA SKI and a random serial', async () => {
    const options = {
      commonName: 'orders-api',
      dns: ['orders.clients.custos.test'],
      uri: ['spiffe://custos.test/client/orders-api'],
      ips: ['10.0.0.7', '2001:db8::1'],
      usage: 'client' as const,
      validityDays: 30,
    };
    const issued = await issueCertificate(ca, options);
    const other = await issueCertificate(ca, options);

    const node = new X509Certificate(issued.certificatePem);
    expect(node.subject).toBe('CN=orders-api');
    expect(node.issuer).toBe('CN=Issuing CA');
    expect(node.ca).toBe(false);
    expect(node.keyUsage).toEqual([CLIENT_AUTH]);
    expect(node.subjectAltName?.split(', ')).toEqual([
      'DNS:orders.clients.custos.test',
      'URI:spiffe://custos.test/client/orders-api',
      'IP Address:10.0.0.7',
      'IP Address:2001:DB8:0:0:0:0:0:1',
    ]);
    expect(node.checkIssued(new X509Certificate(ca.certificatePem))).toBe(true);
    expect(node.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
    expect(createPublicKey(issued.privateKeyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(node.serialNumber).not.toBe(new X509Certificate(other.certificatePem).serialNumber);
    expect(issued.x5tS256).toBe(x5tS256(node));

    const cert = new x509.X509Certificate(issued.certificatePem);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true });
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([
      { type: 'dns', value: 'orders.clients.custos.test' },
      { type: 'url', value: 'spiffe://custos.test/client/orders-api' },
      { type: 'ip', value: '10.0.0.7' },
      { type: 'ip', value: '2001:db8::1' },
    ]);
    const caSki = new x509.X509Certificate(ca.certificatePem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(30 * 86_400_000);
  });

  it('issues a server certificate with EKU serverAuth that matches its host names', async () => {
    const issued = await issueCertificate(ca, {
      commonName: 'localhost',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
      usage: 'server',
      validityDays: 1,
    });
    const node = new X509Certificate(issued.certificatePem);
    expect(node.keyUsage).toEqual([SERVER_AUTH]);
    expect(node.checkHost('localhost')).toBe('localhost');
    expect(node.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it.each([0, 826, 1.5, Number.NaN])('rejects validityDays = %s with an error naming the field', async (days) => {
    await expect(issueCertificate(ca, { commonName: 'x', usage: 'client', validityDays: days })).rejects.toThrow(
      /validityDays/,
    );
  });

  it('rejects a server certificate without host names', async () => {
    await expect(issueCertificate(ca, { commonName: 'x', usage: 'server', validityDays: 1 })).rejects.toThrow(
      /dns or ips/,
    );
  });

  it('refuses a non-CA issuer and a CA key that does not match the CA certificate', async () => {
    const leaf = await issueCertificate(ca, { commonName: 'leaf', usage: 'client', validityDays: 1 });
    await expect(issueCertificate(leaf, { commonName: 'x', usage: 'client', validityDays: 1 })).rejects.toThrow(
      /not a CA/,
    );
    const other = await createCertificateAuthority({ commonName: 'Other CA', validityDays: 1 });
    const mismatched = { certificatePem: ca.certificatePem, privateKeyPem: other.privateKeyPem };
    await expect(issueCertificate(mismatched, { commonName: 'x', usage: 'client', validityDays: 1 })).rejects.toThrow(
      /does not match/,
    );
  });
});

describe('createSelfSignedClientCertificate', () => {
  it('returns a self-signed clientAuth certificate and its public JWK with x5c', async () => {
    const issued = await createSelfSignedClientCertificate({
      commonName: 'self-signed',
      uri: ['spiffe://custos.test/client/self-signed'],
      validityDays: 1,
    });
    const node = new X509Certificate(issued.certificatePem);
    expect(node.subject).toBe(node.issuer);
    expect(node.verify(node.publicKey)).toBe(true);
    expect(node.ca).toBe(false);
    expect(node.keyUsage).toEqual([CLIENT_AUTH]);
    expect(node.subjectAltName).toBe('URI:spiffe://custos.test/client/self-signed');

    expect(issued.jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(issued.jwk).not.toHaveProperty('d');
    expect(issued.jwk.x5c).toEqual([node.raw.toString('base64')]);
    expect(x5tS256(issued.jwk.x5c![0]!)).toBe(issued.x5tS256);
    const fromJwk = createPublicKey({ key: issued.jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    expect(fromJwk.equals(node.publicKey)).toBe(true);
  });
});
