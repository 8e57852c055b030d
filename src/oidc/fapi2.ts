import { errors, type Client, type ClientMetadata } from 'oidc-provider';

/**
 * The FAPI 2.0 Security Profile (final, February 2025) for clients registered with
 * `profile: "fapi2"`. What Custos enforces, requirement by requirement, is listed in
 * docs/api-developers.md; the registration rules (confidential client, mTLS or private_key_jwt,
 * sender-constrained tokens, PAR, code only, https redirect URIs) are checked at start-up by
 * src/config/files.ts, and oidc-provider's own `2.0` profile adds what it knows (PKCE required,
 * the issuer as the only `aud` of client assertions, redirect_uri required).
 */
export function isFapi2(client: Client | undefined): boolean {
  return (client as { profile?: unknown } | undefined)?.profile === 'fapi2';
}

/** oidc-provider `features.fapi`: the 2.0 profile per client, none for the others. */
export function fapi2Feature() {
  return { enabled: true, profile: (_ctx: unknown, client?: Client) => (isFapi2(client) ? '2.0' : undefined) };
}

/** `extraClientMetadata.validator`: `profile` is `fapi2` or absent. */
export function fapi2ProfileValidator(_ctx: unknown, key: string, value: unknown, _metadata: ClientMetadata): void {
  if (key === 'profile' && value !== undefined && value !== 'fapi2') throw new errors.InvalidClientMetadata('profile must be "fapi2"');
}
