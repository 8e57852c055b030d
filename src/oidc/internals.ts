/**
 * The one seam between Custos and oidc-provider's internals. Anything that reaches past
 * oidc-provider's documented configuration lives here, so upgrades have one place to check.
 */
import type Provider from 'oidc-provider';

/**
 * Client secrets are stored as argon2id hashes in the client's `client_secret` metadata;
 * replace the plaintext comparison with argon2 verification (awaited by oidc-provider's
 * client authentication, lib/shared/client_auth.js).
 */
export function useHashedClientSecrets(provider: Provider, verify: (hash: string, secret: string) => Promise<boolean>): void {
  const prototype = provider.Client.prototype as unknown as {
    clientSecret?: string;
    compareClientSecret(this: { clientSecret?: string }, actual: string): Promise<boolean>;
  };
  prototype.compareClientSecret = async function compareHashedClientSecret(actual: string) {
    if (typeof this.clientSecret !== 'string' || typeof actual !== 'string') return false;
    return verify(this.clientSecret, actual);
  };
}
