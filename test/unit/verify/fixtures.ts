import 'reflect-metadata';
import { X509Certificate, randomUUID, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JSONWebKeySet, type JWTPayload } from 'jose';
import { lowS } from '../../helpers/jws.js';

x509.cryptoProvider.set(webcrypto);

export const ISSUER = 'https://custos.test';
export const AUDIENCE = 'https://orders.api.test';

/** An ES256 issuer signing key with its public JWK. */
export interface IssuerKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeIssuerKey(kid: string = randomUUID()): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { kid, privateKey, publicKey, publicJwk };
}

export function jwksOf(...keys: IssuerKey[]): JSONWebKeySet {
  return { keys: keys.map((key) => key.publicJwk) };
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);

/** Claims of a typical Custos access token; `undefined` in overrides removes a claim. */
export function accessClaims(overrides: Record<string, unknown> = {}): JWTPayload {
  const now = nowSec();
  const claims: Record<string, unknown> = {
    iss: ISSUER,
    sub: 'user-123',
    aud: AUDIENCE,
    iat: now,
    exp: now + 300,
    jti: randomUUID(),
    client_id: 'web-bff',
    scope: 'openid orders',
    ...overrides,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return claims as JWTPayload;
}

/**
 * Signs `claims` with ES256 and header `{ typ: 'at+jwt', kid }` (header overrides allowed; `undefined` removes),
 * the signature in the low-S form Custos signs in and `custos/verify` requires.
 */
export async function signToken(
  key: IssuerKey,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  const protectedHeader: Record<string, unknown> = { alg: 'ES256', typ: 'at+jwt', kid: key.kid, ...header };
  for (const [name, value] of Object.entries(protectedHeader)) if (value === undefined) delete protectedHeader[name];
  return lowS(await new SignJWT(claims).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey));
}

export const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** A client certificate in every form a resource server may hold it. */
export interface ClientCert {
  pem: string;
  der: Uint8Array;
  node: X509Certificate;
  /** `x5t#S256` computed independently by @peculiar/x509. */
  thumbprint: string;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

async function generateEcKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

export async function makeClientCert(commonName: string): Promise<ClientCert> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    keys: await generateEcKeys(),
    signingAlgorithm: ECDSA_SHA256,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  const pem = cert.toString('pem');
  return {
    pem,
    der: new Uint8Array(cert.rawData),
    node: new X509Certificate(pem),
    thumbprint: b64url(new Uint8Array(await cert.getThumbprint('SHA-256'))),
  };
}

/** A private CA and a TLS server certificate for 127.0.0.1/localhost, as PEM. */
export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export async function makeTlsMaterial(): Promise<TlsMaterial> {
  const caKeys = await generateEcKeys();
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 86_400_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Custos verify test CA',
    keys: caKeys,
    signingAlgorithm: ECDSA_SHA256,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const serverKeys = await generateEcKeys();
  const server = await x509.X509CertificateGenerator.create({
    subject: 'CN=localhost',
    issuer: ca.subject,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ECDSA_SHA256,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  return {
    caPem: ca.toString('pem'),
    certPem: server.toString('pem'),
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
  };
}
