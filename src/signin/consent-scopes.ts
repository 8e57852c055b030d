import type { ResourceServerConfig } from '../config/files.js';

/** One line of the consent page: a scope and what it lets the client do. */
export interface ScopeItem {
  scope: string;
  description: string;
}

/** What a client asks for, as the consent page lists it: each scope once. */
export interface ConsentItems {
  /** OpenID scopes: what the client learns about the user. */
  identity: ScopeItem[];
  /** Per API (RFC 8707 resource): the scopes the client's tokens for it will carry. */
  resources: Array<{ resource: string; scopes: ScopeItem[] }>;
}

/** The OpenID Connect scopes Custos serves, in words. */
const IDENTITY_SCOPES: Record<string, string> = {
  openid: 'Know who you are (sign you in)',
  email: 'See your e-mail address',
  profile: 'See your username',
  offline_access: 'Keep access while you are away, until you sign out of it or it is revoked',
};

/**
 * The consent page's items from oidc-provider's consent prompt details. oidc-provider also lists
 * a requested API scope among the missing OpenID scopes; it is shown once, under its API, with
 * the description from the resource server's `scope_descriptions` (else the scope itself).
 */
export function consentItems(
  details: { missingOIDCScope?: readonly string[]; missingResourceScopes?: Record<string, readonly string[]> },
  resourceServers: readonly Pick<ResourceServerConfig, 'identifier' | 'scopes' | 'scope_descriptions'>[],
): ConsentItems {
  const missingResources = Object.entries(details.missingResourceScopes ?? {});
  const apiScopes = new Set([...resourceServers.flatMap((rs) => rs.scopes), ...missingResources.flatMap(([, scopes]) => scopes)]);
  const identity = [...new Set(details.missingOIDCScope ?? [])]
    .filter((scope) => !apiScopes.has(scope))
    .map((scope) => ({ scope, description: IDENTITY_SCOPES[scope] ?? 'Use your identity' }));
  const resources = missingResources.map(([resource, scopes]) => {
    const described = resourceServers.find((rs) => rs.identifier === resource)?.scope_descriptions ?? {};
    return { resource, scopes: [...new Set(scopes)].map((scope) => ({ scope, description: described[scope] ?? 'Use this API' })) };
  });
  return { identity, resources };
}
