import { X509Certificate } from 'node:crypto';
import { x509 } from './x509.js';

/** Synchronous certification path check for presented TLS client certificates. */
export interface ChainValidator {
  /**
   * Whether `cert` chains to one of the trust anchors, optionally through
   * untrusted `intermediates` (e.g. the rest of the peer's TLS chain).
   */
  isTrusted(cert: X509Certificate, intermediates?: X509Certificate[]): boolean;
}

export interface ChainValidatorOptions {
  /**
   * Which extKeyUsage the leaf must allow when it carries that extension
   * (RFC 5280 §4.2.1.12). Default `client` (id-kp-clientAuth), the mTLS case.
   */
  purpose?: 'client' | 'server' | 'any';
  /** Maximum number of certificates above the leaf (intermediates + anchor). Default 5. */
  maxDepth?: number;
  /** Clock, for tests. */
  now?: () => Date;
}

const PURPOSE_OID = { client: '1.3.6.1.5.5.7.3.2', server: '1.3.6.1.5.5.7.3.1' } as const;
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/** Splits a PEM bundle into its `CERTIFICATE` blocks (RFC 7468 §5); other blocks are ignored. */
export function parsePemBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/**
 * Builds a synchronous validator (it runs inside oidc-provider's synchronous
 * mTLS hooks) trusting every certificate of `caBundlePem` as an anchor.
 *
 * A simplified RFC 5280 §6.1 path validation with `node:crypto`: from the
 * leaf, repeatedly find an issuer (`checkIssued`: names, key identifiers and
 * the issuer's keyUsage; then `verify` the signature with the issuer's key)
 * among the anchors, else among the intermediates, up to `maxDepth`. Every
 * certificate on the path must be within its validity period (§4.1.2.5); each
 * issuer must be a CA (basicConstraints cA, §4.2.1.9) whose pathLenConstraint
 * admits the intermediates below it (anchors included, as OpenSSL does); the
 * leaf must not be a CA and must allow the purpose. Not checked: revocation,
 * name constraints and policies.
 *
 * @throws Error when the bundle holds no certificate or a non-CA certificate.
 */
export function createChainValidator(caBundlePem: string, options: ChainValidatorOptions = {}): ChainValidator {
  const anchors = parsePemBundle(caBundlePem);
  if (anchors.length === 0) throw new Error('the CA bundle contains no PEM certificate');
  const notCa = anchors.find((anchor) => !anchor.ca);
  if (notCa) throw new Error(`the CA bundle entry "${notCa.subject}" is not a CA certificate`);
  const purpose = options.purpose ?? 'client';
  const maxDepth = options.maxDepth ?? 5;

  const anchorPathLengths = new Map(anchors.map((anchor) => [anchor, pathLength(anchor)]));

  return {
    isTrusted(leaf, intermediates = []) {
      const now = (options.now?.() ?? new Date()).getTime();
      if (leaf.ca || !isCurrent(leaf, now) || !allowsPurpose(leaf, purpose)) return false;
      let current = leaf;
      // `below` = intermediates between the candidate issuer and the leaf (RFC 5280 §4.2.1.9).
      for (let below = 0; below < maxDepth; below++) {
        const admits = (limit: number | undefined): boolean => limit === undefined || below <= limit;
        for (const [anchor, limit] of anchorPathLengths) {
          if (admits(limit) && isIssuedBy(current, anchor, now)) return true;
        }
        const next = intermediates.find((candidate) => isIssuedBy(current, candidate, now));
        if (!next || !admits(pathLength(next))) return false;
        current = next;
      }
      return false;
    },
  };
}

function isIssuedBy(cert: X509Certificate, issuer: X509Certificate, now: number): boolean {
  return issuer.ca && isCurrent(issuer, now) && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function isCurrent(cert: X509Certificate, now: number): boolean {
  return cert.validFromDate.getTime() <= now && now <= cert.validToDate.getTime();
}

function allowsPurpose(cert: X509Certificate, purpose: 'client' | 'server' | 'any'): boolean {
  // node:crypto names the extKeyUsage OIDs `keyUsage`; undefined when the extension is absent.
  const usages = cert.keyUsage as string[] | undefined;
  if (purpose === 'any' || usages === undefined) return true;
  return usages.includes(PURPOSE_OID[purpose]) || usages.includes(ANY_EXTENDED_KEY_USAGE);
}

/** basicConstraints pathLenConstraint; node:crypto does not expose it, @peculiar/x509 parses synchronously. */
function pathLength(cert: X509Certificate): number | undefined {
  return new x509.X509Certificate(cert.raw).getExtension(x509.BasicConstraintsExtension)?.pathLength;
}
