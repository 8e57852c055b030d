import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { ACR_MFA, ACR_PHR, ACR_PWD, ACR_VALUES, acrSatisfies, isAcr, strongerAcr, type Acr } from '../verify/acr.js';

/** Factors a sign-in can complete, as RFC 8176 `amr` values. */
export type Factor = 'pwd' | 'otp' | 'hwk' | 'swk';

/** Client metadata of the sign-in policy (config/clients.json, registered as extra client metadata). */
export const CLIENT_POLICY_METADATA = ['require_mfa', 'minimum_acr'] as const;

/**
 * The `amr` (RFC 8176) after adding `factor`: each value once, plus `mfa` once two different
 * kinds of factor were used (something known and something held).
 */
export function addFactor(amr: readonly string[], factor: Factor, extra: readonly string[] = []): string[] {
  const next = [...new Set([...amr.filter((value) => value !== 'mfa'), factor, ...extra])];
  const kinds = new Set(next.map((value) => (value === 'pwd' ? 'know' : value === 'otp' || value === 'hwk' || value === 'swk' ? 'have' : undefined)));
  kinds.delete(undefined);
  if (kinds.size >= 2) next.push('mfa');
  return next;
}

/** The `acr` an `amr` earns: a passkey with user verification is phishing-resistant, two factors are mfa. */
export function acrOf(amr: readonly string[]): Acr {
  if ((amr.includes('hwk') || amr.includes('swk')) && amr.includes('user')) return ACR_PHR;
  if (amr.includes('mfa')) return ACR_MFA;
  return ACR_PWD;
}

/** The sign-in policy of a client or a resource server: `require_mfa`, `minimum_acr`. */
export interface AcrPolicy {
  require_mfa?: unknown;
  minimum_acr?: unknown;
}

/** The weakest `acr` a policy accepts: its `minimum_acr`, raised to `urn:custos:acr:mfa` with `require_mfa`. */
export function minimumAcrOf(policy: AcrPolicy | undefined): Acr | undefined {
  const minimum = isAcr(policy?.minimum_acr) ? policy.minimum_acr : undefined;
  return strongerAcr(minimum, policy?.require_mfa === true ? ACR_MFA : undefined);
}

/**
 * What a request needs: the weakest of the known `acr_values` it lists (any of them will do,
 * and a stronger one satisfies a weaker one; unknown values are ignored), raised to the client's
 * `minimum_acr` and, with `require_mfa`, to `urn:custos:acr:mfa`, and to `resourceMinimum` (the
 * strongest minimum of the resource servers the request names, RFC 8707).
 */
export function requiredAcr(acrValues: unknown, client: AcrPolicy | undefined, resourceMinimum?: Acr): Acr | undefined {
  let requested: Acr | undefined;
  if (typeof acrValues === 'string') {
    for (const value of acrValues.split(' ')) {
      if (isAcr(value) && (requested === undefined || acrSatisfies(requested, value))) requested = value;
    }
  }
  return strongerAcr(strongerAcr(requested, minimumAcrOf(client)), resourceMinimum);
}

/** The strongest minimum `acr` of `resources` (one or several RFC 8707 indicators); undefined when none has one. */
export function resourcesMinimumAcr(resources: unknown, minimumAcr: (resource: string) => Acr | undefined): Acr | undefined {
  const list = typeof resources === 'string' ? [resources] : Array.isArray(resources) ? resources : [];
  let required: Acr | undefined;
  for (const resource of list) if (typeof resource === 'string') required = strongerAcr(required, minimumAcr(resource));
  return required;
}

/** Validates the policy metadata of a client (`extraClientMetadata.validator`). */
export function validateClientPolicy(_ctx: unknown, key: string, value: unknown): void {
  if (value === undefined) return;
  if (key === 'require_mfa' && typeof value !== 'boolean') throw new errors.InvalidClientMetadata('require_mfa must be a boolean');
  if (key === 'minimum_acr' && !isAcr(value)) throw new errors.InvalidClientMetadata(`minimum_acr must be one of ${ACR_VALUES.join(', ')}`);
}

/** Reason of the login prompt when the session's `acr` is below what the request needs. */
export const ACR_INSUFFICIENT = 'acr_insufficient';

function clientPolicy(ctx: KoaContextWithOIDC) {
  return ctx.oidc.client?.metadata() as AcrPolicy | undefined;
}

/**
 * oidc-provider's default interaction policy plus one login check: a session whose `acr` is
 * below what the request needs (acr_values, the client's `require_mfa` / `minimum_acr`, the
 * `require_mfa` / `minimum_acr` of the resource servers it names or defaults to) is asked to sign
 * in again, with `acr_required` in the prompt details. `max_age` is oidc-provider's own check.
 */
export function signinInteractionPolicy(resourceMinimumAcr: (resource: string) => Acr | undefined = () => undefined) {
  const required = (ctx: KoaContextWithOIDC) =>
    requiredAcr(ctx.oidc.params?.acr_values, clientPolicy(ctx), resourcesMinimumAcr(ctx.oidc.params?.resource, resourceMinimumAcr));
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(
    new interactionPolicy.Check(
      ACR_INSUFFICIENT,
      'a stronger sign-in is required',
      'login_required',
      (ctx: KoaContextWithOIDC) => {
        const needed = required(ctx);
        // Without a session it triggers beside no_session, so the prompt details say what is needed.
        if (needed === undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        return acrSatisfies(ctx.oidc.session?.accountId ? ctx.oidc.session.acr : undefined, needed)
          ? interactionPolicy.Check.NO_NEED_TO_PROMPT
          : interactionPolicy.Check.REQUEST_PROMPT;
      },
      (ctx: KoaContextWithOIDC) => ({ acr_required: required(ctx) }),
    ),
  );
  return policy;
}

/**
 * `acr`, `amr` and `auth_time` of the sign-in behind a token being issued (oidc-provider
 * `extraTokenClaims`): from the authorization code or the refresh token the request presents.
 * Tokens issued without a sign-in (client credentials, token exchange) get none from here.
 */
export function authenticationClaims(ctx: KoaContextWithOIDC | undefined): Record<string, unknown> {
  const entities = ctx?.oidc?.entities as { AuthorizationCode?: Authenticated; RefreshToken?: Authenticated } | undefined;
  const source = entities?.AuthorizationCode ?? entities?.RefreshToken;
  if (!source) return {};
  return {
    ...(typeof source.acr === 'string' ? { acr: source.acr } : {}),
    ...(Array.isArray(source.amr) ? { amr: source.amr } : {}),
    ...(typeof source.authTime === 'number' ? { auth_time: source.authTime } : {}),
  };
}

type Authenticated = { acr?: unknown; amr?: unknown; authTime?: unknown };
