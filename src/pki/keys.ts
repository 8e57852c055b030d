import { randomBytes, webcrypto } from 'node:crypto';
import { x509 } from './x509.js';

/** ECDSA over P-256, the only key type this room issues (RFC 5480 §2.1.1.1). */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** ecdsa-with-SHA256 (RFC 5758 §3.2), the signature algorithm of every certificate we sign. */
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Generates an extractable EC P-256 key pair with WebCrypto. */
export async function generateEcKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** Exports a private key as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, RFC 5208 / RFC 7468 §10). */
export async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return pemText(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

/**
 * `@peculiar/x509` emits PEM without a final newline, so two of its PEMs
 * concatenated into a bundle break OpenSSL's parser ("bad end line"). Every
 * PEM leaving this room ends with `\n`.
 */
export function pemText(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** Imports a PKCS#8 PEM EC P-256 private key for signing. */
export async function importPrivateKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
}

/**
 * A random, positive serial number of 128 bits, as hex (RFC 5280 §4.1.2.2:
 * unique per CA, at most 20 octets; CA/B Forum asks for ≥ 64 bits of entropy).
 */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive, and no leading zero octet
  return bytes.toString('hex');
}

const DAY_MS = 86_400_000;

/** Clock-skew allowance: certificates are valid from one minute before their creation. */
const BACKDATE_MS = 60_000;

/**
 * The validity window of a new certificate (RFC 5280 §4.1.2.5), with
 * `validityDays` checked to be an integer in `[1, maxDays]`. `notBefore` /
 * `notAfter` override the computed bounds (tests build expired certificates so).
 */
export function validityWindow(
  validityDays: number,
  maxDays: number,
  overrides: { notBefore?: Date | undefined; notAfter?: Date | undefined } = {},
): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > maxDays) {
    throw new Error(`validityDays must be an integer between 1 and ${maxDays}, got ${validityDays}`);
  }
  const notBefore = overrides.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = overrides.notAfter ?? new Date(notBefore.getTime() + validityDays * DAY_MS);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new Error('notAfter must be later than notBefore');
  }
  return { notBefore, notAfter };
}
