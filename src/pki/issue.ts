import { exportJWK, type JWK } from 'jose';
import type { PemKeyPair } from './ca.js';
import {
  ECDSA_SHA256,
  exportPrivateKeyPem,
  generateEcKeyPair,
  pemText,
  importPrivateKeyPem,
  randomSerialNumber,
  validityWindow,
} from './keys.js';
import { x5tS256 } from './thumbprint.js';
import { x509 } from './x509.js';

/** Upper bound on a leaf certificate's lifetime (the CA/Browser Forum's historical 825-day cap). */
export const MAX_LEAF_VALIDITY_DAYS = 825;

export type CertificateUsage = 'client' | 'server';

export interface IssueCertificateOptions {
  /** Subject CN (RFC 5280 §4.1.2.6); also what `tls_client_auth_subject_dn` matches. */
  commonName: string;
  /** subjectAltName dNSName entries (RFC 5280 §4.2.1.6; `tls_client_auth_san_dns`, RFC 8705 §2.1.2). */
  dns?: string[] | undefined;
  /** subjectAltName uniformResourceIdentifier entries (`tls_client_auth_san_uri`), e.g. SPIFFE IDs. */
  uri?: string[] | undefined;
  /** subjectAltName iPAddress entries, IPv4 or IPv6 (`tls_client_auth_san_ip`). */
  ips?: string[] | undefined;
  /** `client` → extKeyUsage id-kp-clientAuth, `server` → id-kp-serverAuth (RFC 5280 §4.2.1.12). */
  usage: CertificateUsage;
  /** Lifetime in days, 1 … {@link MAX_LEAF_VALIDITY_DAYS}. */
  validityDays: number;
  /** Overrides the start of validity (default: now − 1 min). Meant for tests. */
  notBefore?: Date | undefined;
  /** Overrides the end of validity (default: notBefore + validityDays). Meant for tests. */
  notAfter?: Date | undefined;
}

/** An issued certificate, its private key and its RFC 8705 §3.1 `x5t#S256`. */
export interface IssuedCertificate extends PemKeyPair {
  x5tS256: string;
}

/**
 * Issues an EC P-256 end-entity certificate signed by `ca` (RFC 5280 §4.1):
 * random 128-bit serial, basicConstraints `cA=FALSE` (critical, §4.2.1.9),
 * keyUsage digitalSignature (critical, §4.2.1.3), extKeyUsage clientAuth or
 * serverAuth (§4.2.1.12), subjectAltName (§4.2.1.6), subjectKeyIdentifier and
 * an authorityKeyIdentifier equal to the CA's subjectKeyIdentifier (§4.2.1.1).
 *
 * Client certificates issued this way suit `tls_client_auth` (RFC 8705 §2.1).
 *
 * @throws Error when `validityDays` is outside 1 … 825, when a server
 *   certificate has no DNS or IP name, or when the CA key does not match the CA certificate.
 */
export async function issueCertificate(ca: PemKeyPair, options: IssueCertificateOptions): Promise<IssuedCertificate> {
  const validity = validityWindow(options.validityDays, MAX_LEAF_VALIDITY_DAYS, options);
  const names = subjectAltNames(options);
  if (options.usage === 'server' && !names.some((n) => n.type === 'dns' || n.type === 'ip')) {
    throw new Error('a server certificate needs at least one dns or ips entry');
  }

  const caCert = new x509.X509Certificate(ca.certificatePem);
  if (caCert.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
    throw new Error(`the issuing certificate "${caCert.subject}" is not a CA (basicConstraints cA is not TRUE)`);
  }
  const caKey = await importPrivateKeyPem(ca.privateKeyPem);
  const caKeyId =
    caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    (await x509.SubjectKeyIdentifierExtension.create(caCert.publicKey)).keyId;

  const keys = await generateEcKeyPair();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: [{ CN: [options.commonName] }],
    issuer: caCert.subjectName,
    ...validity,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usageOid(options.usage)]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.AuthorityKeyIdentifierExtension(caKeyId),
    ],
  });
  if (!(await certificate.verify({ publicKey: caCert, signatureOnly: true }))) {
    throw new Error('the CA private key does not match the CA certificate');
  }

  return {
    certificatePem: pemText(certificate.toString('pem')),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
    x5tS256: x5tS256(new Uint8Array(certificate.rawData)),
  };
}

export interface SelfSignedClientCertificateOptions {
  commonName: string;
  dns?: string[] | undefined;
  uri?: string[] | undefined;
  validityDays: number;
  notBefore?: Date | undefined;
  notAfter?: Date | undefined;
}

/** A self-signed client certificate plus the public JWK to register for it. */
export interface SelfSignedClientCertificate extends IssuedCertificate {
  /** Public JWK of the certificate's key with `x5c: [base64 DER]` (RFC 7517 §4.7). */
  jwk: JWK;
}

/**
 * Creates a self-signed EC P-256 client certificate for
 * `self_signed_tls_client_auth` (RFC 8705 §2.2): the client registers `jwk`
 * (whose `x5c[0]` is this certificate) in its `jwks`, and the server matches
 * the presented certificate by its `x5t#S256`. Not a CA (basicConstraints
 * `cA=FALSE`), extKeyUsage clientAuth.
 */
export async function createSelfSignedClientCertificate(
  options: SelfSignedClientCertificateOptions,
): Promise<SelfSignedClientCertificate> {
  const validity = validityWindow(options.validityDays, MAX_LEAF_VALIDITY_DAYS, options);
  const names = subjectAltNames(options);
  const keys = await generateEcKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [options.commonName] }],
    ...validity,
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const der = Buffer.from(certificate.rawData);
  return {
    certificatePem: pemText(certificate.toString('pem')),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
    x5tS256: x5tS256(der),
    jwk: { ...(await exportJWK(keys.publicKey)), x5c: [der.toString('base64')] },
  };
}

function usageOid(usage: CertificateUsage): string {
  switch (usage) {
    case 'client':
      return x509.ExtendedKeyUsage.clientAuth;
    case 'server':
      return x509.ExtendedKeyUsage.serverAuth;
    default:
      throw new Error(`usage must be "client" or "server", got ${String(usage)}`);
  }
}

function subjectAltNames(options: {
  dns?: string[] | undefined;
  uri?: string[] | undefined;
  ips?: string[] | undefined;
}): x509.JsonGeneralName[] {
  return [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.uri ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
}
