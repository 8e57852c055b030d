import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { beforeGrant, resolveTokenResource, type ResourceSource } from '../oidc/internals.js';
import { acrSatisfies, type Acr } from '../verify/acr.js';

/**
 * Refusal of a token for a resource server whose minimum sign-in the grant does not meet.
 * `invalid_target` (RFC 8707 §2, RFC 8693 §2.2.2: the server is unwilling to issue a token for
 * that target): the grant itself stays valid for its other resources, so not `invalid_grant`;
 * `insufficient_user_authentication` (RFC 9470 §3) is registered for resource access errors
 * only. The description names the `acr` to ask for (`acr_values`) in a new authorization request.
 */
export function insufficientAcrForResource(resource: string, minimum: Acr, actual: unknown): InstanceType<typeof errors.InvalidTarget> {
  const had = typeof actual === 'string' ? actual : 'none';
  return new errors.InvalidTarget(`${resource} requires a user sign-in of at least ${minimum}, the one behind this grant or token is ${had}: sign in again with acr_values=${minimum}`);
}

/** Throws {@link insufficientAcrForResource} unless `acr` meets the minimum of `resource`. */
export function assertResourceAcr(resource: string, acr: unknown, minimumAcr: (resource: string) => Acr | undefined): void {
  const minimum = minimumAcr(resource);
  if (minimum !== undefined && !acrSatisfies(acr, minimum)) throw insufficientAcrForResource(resource, minimum, acr);
}

/**
 * The token endpoint half of a resource server's `require_mfa` / `minimum_acr`: an
 * authorization_code or refresh_token request whose access token would be for such a resource
 * server is refused before oidc-provider's handler runs (no code consumed, no refresh token
 * rotated) when the sign-in behind the code or refresh token (`acr`) is below its minimum.
 * A code or token that is unknown, another client's, expired or already used is left to the
 * handler (its own errors, refresh-token reuse detection). client_credentials tokens have no
 * user and are not affected; token exchange checks its subject token (src/grants/token-exchange/).
 */
export function enforceResourceAcr(provider: Provider, minimumAcr: (resource: string) => Acr | undefined): void {
  const check = (find: (ctx: KoaContextWithOIDC) => Promise<ResourceSource | undefined>) => async (ctx: KoaContextWithOIDC) => {
    const source = await find(ctx);
    if (!source || source.clientId !== ctx.oidc.client?.clientId || source.isExpired || (source as { consumed?: unknown }).consumed) return;
    const resource = await resolveTokenResource(ctx, source);
    if (resource !== undefined) assertResourceAcr(resource, source.acr, minimumAcr);
  };
  beforeGrant(
    provider,
    'authorization_code',
    check(async (ctx) => {
      const code = ctx.oidc.params?.code;
      return typeof code === 'string' ? provider.AuthorizationCode.find(code) : undefined;
    }),
  );
  beforeGrant(
    provider,
    'refresh_token',
    check(async (ctx) => {
      const token = ctx.oidc.params?.refresh_token;
      return typeof token === 'string' ? provider.RefreshToken.find(token, { ignoreExpiration: true }) : undefined;
    }),
  );
}
