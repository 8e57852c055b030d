import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';
import { ConfigError } from '../config/config-error.js';
import type { ClientConfig } from '../config/files.js';

const MTLS_METHODS = new Set(['tls_client_auth', 'self_signed_tls_client_auth']);

/**
 * Maps a configured client to oidc-provider metadata (RFC 7591 names). The argon2id hash is
 * handed over as `client_secret`; internals.ts makes oidc-provider verify against it. Clients that
 * authenticate with mTLS get certificate-bound tokens unless their config says otherwise.
 */
export function toClientMetadata(client: ClientConfig): ClientMetadata {
  const metadata: ClientMetadata = {
    client_id: client.client_id,
    client_name: client.client_name,
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    grant_types: client.grant_types,
    response_types: client.response_types as ClientMetadata['response_types'],
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    tls_client_certificate_bound_access_tokens:
      client.tls_client_certificate_bound_access_tokens ?? MTLS_METHODS.has(client.token_endpoint_auth_method),
    dpop_bound_access_tokens: client.dpop_bound_access_tokens ?? false,
    require_pushed_authorization_requests: client.require_pushed_authorization_requests ?? client.profile === 'fapi2',
  };
  if (client.profile) metadata.profile = client.profile;
  if (client.scope) metadata.scope = client.scope;
  if (client.client_secret_hash) metadata.client_secret = client.client_secret_hash;
  if (client.tls_client_auth_san_dns) metadata.tls_client_auth_san_dns = client.tls_client_auth_san_dns;
  if (client.tls_client_auth_san_uri) metadata.tls_client_auth_san_uri = client.tls_client_auth_san_uri;
  if (client.tls_client_auth_subject_dn) metadata.tls_client_auth_subject_dn = client.tls_client_auth_subject_dn;
  if (client.backchannel_logout_uri) {
    metadata.backchannel_logout_uri = client.backchannel_logout_uri;
    metadata.backchannel_logout_session_required = client.backchannel_logout_session_required;
  }
  if (client.require_mfa) metadata.require_mfa = true;
  if (client.minimum_acr) metadata.minimum_acr = client.minimum_acr;
  if (client.jwks) metadata.jwks = client.jwks as unknown as ClientMetadata['jwks'];
  return metadata;
}

/**
 * Puts every configured client through oidc-provider's own metadata validation (the metadata it
 * will be handed, nothing stored), so invalid client metadata stops start-up, before the client
 * file is written to the database, instead of failing each request with `invalid_client_metadata`.
 */
export async function assertClientsValid(
  provider: Provider,
  clients: readonly ClientMetadata[],
  source: string,
): Promise<void> {
  const problems: string[] = [];
  for (const client of clients) {
    try {
      // `Client.validate` is oidc-provider's (it builds the Client as `find` would); its types omit it.
      await (provider.Client as unknown as { validate(metadata: ClientMetadata): Promise<void> }).validate(client);
    } catch (error) {
      const detail = (error as { error_description?: string }).error_description ?? (error as Error).message;
      problems.push(`${source}: client ${client.client_id}: ${detail}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
