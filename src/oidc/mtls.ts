import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ChainValidator } from '../pki/chain.js';
import { certificateSubjectMatches } from '../pki/subject-match.js';
import type { ClientCertificateState } from '../http/client-certificate.js';

function stateOf(ctx: KoaContextWithOIDC): ClientCertificateState {
  return ctx.state as ClientCertificateState;
}

/**
 * oidc-provider `features.mTLS` (RFC 8705): `tls_client_auth` against the CA bundle,
 * `self_signed_tls_client_auth` against the client's registered `jwks` x5c, and
 * certificate-bound access tokens (`cnf.x5t#S256`). The certificate comes from
 * the clientCertificate middleware (TLS handshake, or RFC 9440 header from a trusted proxy).
 */
export function mtlsFeature(chain: ChainValidator) {
  return {
    enabled: true,
    certificateBoundAccessTokens: true,
    tlsClientAuth: true,
    selfSignedTlsClientAuth: true,
    getCertificate: (ctx: KoaContextWithOIDC): X509Certificate | undefined => stateOf(ctx).clientCertificate,
    certificateAuthorized: (ctx: KoaContextWithOIDC): boolean => {
      const { clientCertificate, clientCertificateChain, clientCertificateSource } = stateOf(ctx);
      if (clientCertificate === undefined) return false;
      // Over direct TLS, OpenSSL already verified the path the client sent (intermediates
      // included, also on resumed sessions where Node no longer exposes them) against the same
      // CA bundle; certificates from a trusted proxy are validated here.
      if (clientCertificateSource === 'tls' && (ctx.req.socket as TLSSocket).authorized) return true;
      return chain.isTrusted(clientCertificate, clientCertificateChain);
    },
    certificateSubjectMatches: (ctx: KoaContextWithOIDC, property: string, expected: string): boolean => {
      const cert = stateOf(ctx).clientCertificate;
      return cert !== undefined && certificateSubjectMatches(cert, property, expected);
    },
  };
}
