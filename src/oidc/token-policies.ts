import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { clientLookup, type ClientSource, type ResourcePolicy } from './resource-servers.js';

interface TokenLike {
  clientId?: string;
  aud?: string | string[];
}

interface ClientLike {
  clientId: string;
}

/**
 * Who may introspect or revoke which token:
 * - introspection (RFC 7662 §2.1 "authorized protected resources"): the client the token was
 *   issued to, a client that serves one of the token's audiences, or a client configured
 *   with `introspection: true`;
 * - revocation (RFC 7009 §2.1): only the client the token was issued to.
 */
export function accessPolicies(clients: ClientSource, policy: ResourcePolicy) {
  const find = clientLookup(clients);
  return {
    introspection: async (_ctx: KoaContextWithOIDC, client: ClientLike, token: TokenLike) => {
      if (token.clientId === client.clientId || find(client.clientId)?.introspection) return true;
      const audiences = Array.isArray(token.aud) ? token.aud : token.aud ? [token.aud] : [];
      return policy.serves(client.clientId).some((resource) => audiences.includes(resource));
    },
    revocation: async (_ctx: KoaContextWithOIDC, client: ClientLike, token: TokenLike) => {
      if (token.clientId !== client.clientId) {
        throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
      }
      return true;
    },
  };
}

/** The introspection and revocation policies of {@link accessPolicies}. */
export type AccessPolicies = ReturnType<typeof accessPolicies>;
