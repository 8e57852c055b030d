import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { ClientConfig, ResourceServerConfig } from '../config/files.js';
import { minimumAcrOf } from '../signin/authentication-context.js';
import type { Acr } from '../verify/acr.js';

/** Resource indicator policy (RFC 8707): which client may get tokens for which API, and how. */
export interface ResourcePolicy {
  defaultResource(clientId: string | undefined): string | undefined;
  resourceServerInfo(resource: string, clientId: string): ResourceServer;
  resourceServer(resource: string): ResourceServerConfig | undefined;
  /** The weakest sign-in (`acr`) behind a user's token for `resource` (its `minimum_acr`, `require_mfa`); undefined: any. */
  minimumAcr(resource: string): Acr | undefined;
  /** Resources whose tokens `clientId` receives as an API (the `serves` list). */
  serves(clientId: string): readonly string[];
}

/** The clients a policy knows: a fixed list, or a lookup of the client registry (src/clients/). */
export type ClientSource = readonly ClientConfig[] | ((clientId: string) => ClientConfig | undefined);

/** A lookup by client id over a {@link ClientSource}. */
export function clientLookup(clients: ClientSource): (clientId: string) => ClientConfig | undefined {
  if (typeof clients === 'function') return clients;
  const byClient = new Map(clients.map((client) => [client.client_id, client]));
  return (clientId) => byClient.get(clientId);
}

/** Builds the resource policy from config; tokens are always ES256 RFC 9068 JWTs signed with `kid`. */
export function createResourcePolicy(
  resourceServers: readonly ResourceServerConfig[],
  clients: ClientSource,
  signingKid: () => string,
): ResourcePolicy {
  const servers = new Map(resourceServers.map((rs) => [rs.identifier, rs]));
  const find = clientLookup(clients);
  return {
    defaultResource: (clientId) => (clientId ? find(clientId)?.default_resource : undefined),
    resourceServer: (resource) => servers.get(resource),
    minimumAcr: (resource) => minimumAcrOf(servers.get(resource)),
    serves: (clientId) => find(clientId)?.serves ?? [],
    resourceServerInfo(resource, clientId) {
      const server = servers.get(resource);
      const client = find(clientId);
      if (!server || !client?.resources.includes(resource)) {
        throw new errors.InvalidTarget('the requested resource is unknown or not allowed for this client');
      }
      return {
        scope: server.scopes.join(' '),
        audience: server.identifier,
        accessTokenTTL: server.accessTokenTTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256', kid: signingKid() } },
      };
    },
  };
}

/** OpenID Connect scopes that address the user's identity, not an API. */
export const IDENTITY_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access', 'email', 'profile']);

/** oidc-provider `features.resourceIndicators` hooks over a {@link ResourcePolicy}. */
export function resourceIndicatorsFeature(policy: ResourcePolicy) {
  return {
    enabled: true,
    defaultResource: async (ctx: KoaContextWithOIDC, _client: unknown, oneOf?: readonly string[]) => {
      const fallback = policy.defaultResource(ctx.oidc.client?.clientId);
      if (oneOf && oneOf.length > 0) return fallback && oneOf.includes(fallback) ? fallback : oneOf[0];
      return fallback;
    },
    // Token requests without `resource` get a token for the granted resource (RFC 9068 JWT), except
    // a refresh that narrows `scope` to identity scopes only: that yields the opaque token the
    // userinfo endpoint takes (resource tokens are refused there).
    useGrantedResource: async (ctx: KoaContextWithOIDC) => {
      const scope = ctx.oidc.params?.scope;
      return !(typeof scope === 'string' && scope.split(' ').every((value) => IDENTITY_SCOPES.has(value)));
    },
    getResourceServerInfo: async (_ctx: KoaContextWithOIDC, resource: string, client: { clientId: string }) =>
      policy.resourceServerInfo(resource, client.clientId),
  };
}
