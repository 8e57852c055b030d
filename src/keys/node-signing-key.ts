import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { SigningJwk } from './signing-keys.js';
import { lowSEs256Signature } from '../verify/es256-signature.js';

/**
 * An ES256 signing key for oidc-provider's `jwks` (`features.externalSigningSupport`): the key is
 * imported once into a `node:crypto` KeyObject and every JWS (access tokens, ID tokens, resume
 * tokens, SETs) is signed with it, instead of through WebCrypto per token. The signature is the
 * RFC 7518 §3.4 R‖S form (`ieee-p1363`); the public JWK oidc-provider publishes is derived from
 * the same key, with this key's `kid`.
 *
 * The signature is computed on libuv's thread pool (`crypto.sign` with a callback), not on the
 * event loop: measured in `npm run bench`, signing on the event loop cost more CPU per token, not
 * only throughput, because answers then leave one at a time and each wakes the waiting client
 * (on loopback the sender pays for that wake-up), where answers completed by the pool leave
 * together (docs/performance.md, "CPU per token at or below bare oidc-provider's").
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
  override sign(data: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      sign('sha256', data, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' }, (error, signature) => {
        if (error) reject(error);
        else resolve(lowSEs256Signature(signature));
      });
    });
  }
}
