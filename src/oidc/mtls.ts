import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ChainValidator } from '../pki/chain.js';
import { createCertificateFactsCache } from '../pki/certificate-facts.js';
import { registeredSubject, subjectMatches } from '../pki/subject-match.js';
import type { ClientCertificateState } from '../http/client-certificate.js';

function stateOf(ctx: KoaContextWithOIDC): ClientCertificateState {
  return ctx.state as ClientCertificateState;
}

/**
 * oidc-provider `features.mTLS` (RFC 8705): `tls_client_auth` against the CA bundle,
 * `self_signed_tls_client_auth` against the client's registered `jwks` x5c, and
 * certificate-bound access tokens (`cnf.x5t#S256`). The certificate comes from
 * the clientCertificate middleware (TLS handshake, or RFC 9440 header from a trusted proxy).
 * What is derived from a certificate (SANs, subject, thumbprint) is computed once per certificate
 * (per connection, and by DER across connections); registered subject DNs are parsed once.
 */
export function mtlsFeature(
  chain: ChainValidator,
  /**
   * Every active `tls_client_auth_*` subject of a client (src/clients/: during a certificate
   * rotation the old and the new binding both authenticate); default: the one registered.
   */
  subjectsOf?: (clientId: string) => ReadonlyArray<{ property: string; value: string }>,
) {
  const factsOf = createCertificateFactsCache();
  // Registered values come from the client configuration: a bounded set of strings.
  const subjects = new Map<string, string | undefined>();
  const subjectOf = (expected: string): string | undefined => {
    if (!subjects.has(expected)) {
      if (subjects.size >= 1024) subjects.clear();
      subjects.set(expected, registeredSubject(expected));
    }
    return subjects.get(expected);
  };
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
      if (cert === undefined) return false;
      const clientId = ctx.oidc?.client?.clientId;
      const registered = clientId && subjectsOf ? subjectsOf(clientId) : [];
      if (registered.length === 0) return subjectMatches(factsOf(cert), property, expected, subjectOf);
      const facts = factsOf(cert);
      return registered.some((subject) => subjectMatches(facts, subject.property, subject.value, subjectOf));
    },
  };
}
