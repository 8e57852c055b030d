import type { Grant, KoaContextWithOIDC } from 'oidc-provider';

interface PromptDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

/** Adds what a consent prompt found missing (scopes, claims, resource scopes) to `grant`. */
export function grantRequested(grant: Grant, details: PromptDetails): void {
  if (details.missingOIDCScope?.length) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims?.length) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
  }
}

/**
 * oidc-provider `loadExistingGrant`: the session's grant for the client, as by default; for a
 * client configured `first_party: true` the grant is created or topped up with what the request
 * asks for (within what the client is registered for), so no consent page is shown.
 */
export function loadExistingGrant(firstParty: (clientId: string) => boolean) {
  return async function loadGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
    const { oidc } = ctx;
    const client = oidc.client!;
    const grantId = oidc.result?.consent?.grantId ?? oidc.session!.grantIdFor(client.clientId);
    const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!firstParty(client.clientId)) return existing;
    const grant = existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId: oidc.session!.accountId });
    const requested = oidc.requestParamScopes;
    const missingResourceScopes: Record<string, string[]> = {};
    for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
      missingResourceScopes[indicator] = [...requested].filter((scope) => server.scopes.has(scope));
    }
    grantRequested(grant, {
      missingOIDCScope: [...oidc.requestParamOIDCScopes],
      missingOIDCClaims: [...(oidc.requestParamClaims as Set<string>)],
      missingResourceScopes,
    });
    await grant.save();
    return grant;
  };
}
