import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { SigningJwk } from './signing-keys.js';
import { lowSEs256Signature } from '../verify/es256-signature.js';

/**
 * An ES256 signing key for oidc-provider's `jwks` (`features.externalSigningSupport`): the key is
 * imported once into a `node:crypto` KeyObject and every JWS (access tokens, ID tokens, resume
 * tokens) is signed synchronously with it, instead of through WebCrypto per token. The signature
 * is the RFC 7518 §3.4 R‖S form (`ieee-p1363`); the public JWK oidc-provider publishes is derived
 * from the same key, with this key's `kid`.
 */
export class NodeEs256SigningKey extends ExternalSigningKey {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #kid: string;

  constructor(jwk: SigningJwk) {
    super();
    this.#privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    if (this.#privateKey.asymmetricKeyType !== 'ec' || this.#privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error(`signing key ${jwk.kid} is not an ES256 (P-256) key`);
    }
    this.#publicKey = createPublicKey(this.#privateKey);
    this.#kid = jwk.kid;
  }

  override get kid(): string {
    return this.#kid;
  }

  override get alg(): string {
    return 'ES256';
  }

  override keyObject(): KeyObject {
    return this.#publicKey;
  }

  /**
   * RFC 7515 §5.1 step 5 over the JWS signing input: ECDSA P-256 with SHA-256 (RFC 7518 §3.4),
   * in the canonical low-S form every Custos verifier requires.
   */
  override sign(data: Uint8Array): Uint8Array {
    return lowSEs256Signature(sign('sha256', data, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' }));
  }
}
