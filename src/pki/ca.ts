import {
  ECDSA_SHA256,
  exportPrivateKeyPem,
  generateEcKeyPair,
  pemText,
  randomSerialNumber,
  validityWindow,
} from './keys.js';
import { x509 } from './x509.js';

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface PemKeyPair {
  certificatePem: string;
  privateKeyPem: string;
}

export interface CreateCertificateAuthorityOptions {
  /** Subject and issuer CN of the self-signed root. */
  commonName: string;
  /** Lifetime in days, 1 … {@link MAX_CA_VALIDITY_DAYS}. */
  validityDays: number;
}

/** Upper bound on a root's lifetime (ten years). */
export const MAX_CA_VALIDITY_DAYS = 3650;

/**
 * Creates a self-signed EC P-256 root CA (RFC 5280 §3.2, §6.1: a trust anchor):
 * basicConstraints `cA=TRUE, pathLen=0` (critical, §4.2.1.9; it signs leaves only),
 * keyUsage `keyCertSign | cRLSign` (critical, §4.2.1.3) and a
 * subjectKeyIdentifier (§4.2.1.2) that issued certificates reference in their
 * authorityKeyIdentifier.
 */
export async function createCertificateAuthority(options: CreateCertificateAuthorityOptions): Promise<PemKeyPair> {
  const { notBefore, notAfter } = validityWindow(options.validityDays, MAX_CA_VALIDITY_DAYS);
  const keys = await generateEcKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [options.commonName] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificatePem: pemText(certificate.toString('pem')),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}
