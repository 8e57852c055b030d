import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, type PemKeyPair } from '../../../src/pki/ca.js';
import { createChainValidator, parsePemBundle } from '../../../src/pki/chain.js';
import { createSelfSignedClientCertificate, issueCertificate } from '../../../src/pki/issue.js';
import { exportPrivateKeyPem, generateEcKeyPair, importPrivateKeyPem } from '../../../src/pki/keys.js';
import { x509 } from '../../../src/pki/x509.js';

const DAY = 86_400_000;
const node = (pair: PemKeyPair): X509Certificate => new X509Certificate(pair.certificatePem);

/** A CA certificate signed by `issuer` (self-signed when absent), with an optional pathLenConstraint. */
async function createTestCa(commonName: string, issuer?: PemKeyPair, pathLength?: number): Promise<PemKeyPair> {
  const keys = await generateEcKeyPair();
  const extensions = [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const common = { subject: `CN=${commonName}`, notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY) };
  const cert = issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        issuer: new x509.X509Certificate(issuer.certificatePem).subjectName,
        publicKey: keys.publicKey,
        signingKey: await importPrivateKeyPem(issuer.privateKeyPem),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({
        name: common.subject,
        notBefore: common.notBefore,
        notAfter: common.notAfter,
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions,
      });
  return { certificatePem: `${cert.toString('pem')}\n`, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

describe('createChainValidator', () => {
  let ca: PemKeyPair;
  let otherCa: PemKeyPair;
  let client: PemKeyPair;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Trusted CA', validityDays: 30 });
    otherCa = await createCertificateAuthority({ commonName: 'Other CA', validityDays: 30 });
    client = await issueCertificate(ca, { commonName: 'orders', dns: ['orders.test'], usage: 'client', validityDays: 30 });
  });

  it('trusts a client certificate issued by the CA and rejects it against another CA', () => {
    expect(createChainValidator(ca.certificatePem).isTrusted(node(client))).toBe(true);
    expect(createChainValidator(otherCa.certificatePem).isTrusted(node(client))).toBe(false);
  });

  it('trusts any anchor of a multi-certificate bundle', () => {
    const bundle = otherCa.certificatePem + ca.certificatePem;
    expect(parsePemBundle(bundle).map((cert) => cert.subject)).toEqual(['CN=Other CA', 'CN=Trusted CA']);
    expect(createChainValidator(bundle).isTrusted(node(client))).toBe(true);
  });

  it('rejects an expired certificate and one not yet valid', async () => {
    const expired = await issueCertificate(ca, {
      commonName: 'expired',
      usage: 'client',
      validityDays: 1,
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const future = await issueCertificate(ca, {
      commonName: 'future',
      usage: 'client',
      validityDays: 1,
      notBefore: new Date(Date.now() + DAY),
    });
    const validator = createChainValidator(ca.certificatePem);
    expect(validator.isTrusted(node(expired))).toBe(false);
    expect(validator.isTrusted(node(future))).toBe(false);
  });

  it('checks validity against the clock for the leaf and for its issuer', async () => {
    const backdatedCa = await createTestCa('Backdated CA'); // valid from now − 1 day to now + 1 day
    const leaf = await issueCertificate(backdatedCa, {
      commonName: 'short-lived',
      usage: 'client',
      validityDays: 1,
      notBefore: new Date(Date.now() - 0.9 * DAY),
      notAfter: new Date(Date.now() - 0.5 * DAY),
    });
    const at = (offset: number) => createChainValidator(backdatedCa.certificatePem, { now: () => new Date(Date.now() + offset) });
    expect(at(-0.7 * DAY).isTrusted(node(leaf))).toBe(true);
    expect(at(0).isTrusted(node(leaf))).toBe(false); // leaf expired
    expect(at(-0.95 * DAY).isTrusted(node(leaf))).toBe(false); // leaf not yet valid

    const longLeaf = await issueCertificate(backdatedCa, { commonName: 'long', usage: 'client', validityDays: 30 });
    expect(at(0).isTrusted(node(longLeaf))).toBe(true);
    expect(at(2 * DAY).isTrusted(node(longLeaf))).toBe(false); // the CA has expired
  });

  it('rejects a CA certificate presented as the leaf', () => {
    const validator = createChainValidator(ca.certificatePem);
    expect(validator.isTrusted(node(ca))).toBe(false);
    expect(validator.isTrusted(node(otherCa))).toBe(false);
  });

  it('rejects a leaf whose extKeyUsage does not allow the purpose', async () => {
    const server = await issueCertificate(ca, { commonName: 'srv', dns: ['srv.test'], usage: 'server', validityDays: 1 });
    expect(createChainValidator(ca.certificatePem).isTrusted(node(server))).toBe(false);
    expect(createChainValidator(ca.certificatePem, { purpose: 'server' }).isTrusted(node(server))).toBe(true);
    expect(createChainValidator(ca.certificatePem, { purpose: 'any' }).isTrusted(node(server))).toBe(true);
  });

  it('rejects a self-signed client certificate (self_signed_tls_client_auth is matched by thumbprint instead)', async () => {
    const selfSigned = await createSelfSignedClientCertificate({ commonName: 'self', validityDays: 1 });
    expect(createChainValidator(ca.certificatePem).isTrusted(node(selfSigned))).toBe(false);
  });

  it('rejects a leaf signed by a non-CA certificate, even when that certificate is offered as intermediate', async () => {
    const keys = await generateEcKeyPair();
    const rogue = await x509.X509CertificateGenerator.create({
      subject: 'CN=rogue',
      issuer: new x509.X509Certificate(client.certificatePem).subjectName,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
      publicKey: keys.publicKey,
      signingKey: await importPrivateKeyPem(client.privateKeyPem),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
    });
    const rogueCert = new X509Certificate(rogue.toString('pem'));
    expect(rogueCert.verify(node(client).publicKey)).toBe(true); // the signature itself is fine
    expect(createChainValidator(ca.certificatePem).isTrusted(rogueCert, [node(client)])).toBe(false);
  });

  it('walks through intermediates and enforces pathLenConstraint', async () => {
    const root = await createTestCa('Root');
    const intermediate = await createTestCa('Intermediate', root);
    const leaf = await issueCertificate(intermediate, { commonName: 'deep', usage: 'client', validityDays: 1 });

    const validator = createChainValidator(root.certificatePem);
    expect(validator.isTrusted(node(leaf), [node(intermediate)])).toBe(true);
    expect(validator.isTrusted(node(leaf))).toBe(false);
    expect(createChainValidator(intermediate.certificatePem).isTrusted(node(leaf))).toBe(true);
    expect(createChainValidator(root.certificatePem, { maxDepth: 1 }).isTrusted(node(leaf), [node(intermediate)])).toBe(false);

    // createCertificateAuthority roots carry pathLen=0: they may sign leaves only.
    const leafOnlyRoot = await createCertificateAuthority({ commonName: 'Leaf-only root', validityDays: 1 });
    const illegalIntermediate = await createTestCa('Illegal intermediate', leafOnlyRoot);
    const illegalLeaf = await issueCertificate(illegalIntermediate, { commonName: 'x', usage: 'client', validityDays: 1 });
    expect(createChainValidator(leafOnlyRoot.certificatePem).isTrusted(node(illegalLeaf), [node(illegalIntermediate)])).toBe(false);
  });

  it('refuses a bundle without certificates or with a non-CA certificate', () => {
    expect(() => createChainValidator('')).toThrow(/no PEM certificate/);
    expect(() => createChainValidator(client.certificatePem)).toThrow(/not a CA/);
  });
});
