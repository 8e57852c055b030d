import type { ClientMetadata } from 'oidc-provider';
import { clientSchema, type ClientConfig } from '../config/files.js';
import { toClientMetadata } from '../oidc/clients.js';
import { ClientError } from './client-errors.js';

export interface ValidationContext {
  /** Resource servers of the configuration (RFC 8707 identifiers). */
  resources: ReadonlySet<string>;
  /** Production: redirect URIs must be https (plain http only to loopback outside production). */
  production: boolean;
  /** oidc-provider's own metadata validation (`provider.Client.validate`), when a provider is at hand. */
  providerValidate?: (metadata: ClientMetadata) => Promise<void>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
const USER_GRANTS = new Set(['authorization_code', 'refresh_token', 'implicit']);

/** The first string in `value` (keys included) that jsonb cannot hold: U+0000 or a lone UTF-16 surrogate. */
export function unstorableField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') || !value.isWellFormed() ? path || 'metadata' : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = unstorableField(item, `${path}.${index}`);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const field = path ? `${path}.${key}` : key;
      const found = unstorableField(key, field) ?? unstorableField(item, field);
      if (found) return found;
    }
  }
  return undefined;
}

function invalidMetadata(message: string): ClientError {
  return new ClientError('invalid_client_metadata', message);
}

/** RFC 7591 §2 / OAuth 2.0 Security BCP §4.1: exact, absolute, no fragment, https (http only to loopback, not in production). */
function checkRedirectUri(value: string, field: string, production: boolean): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ClientError('invalid_redirect_uri', `${field}: ${JSON.stringify(value)} is not an absolute URI`);
  }
  if (value.includes('*')) throw new ClientError('invalid_redirect_uri', `${field}: ${value}: no wildcards; register every URI exactly`);
  if (url.hash || value.includes('#')) throw new ClientError('invalid_redirect_uri', `${field}: ${value}: no fragment (RFC 6749 §3.1.2)`);
  if (url.username || url.password) throw new ClientError('invalid_redirect_uri', `${field}: ${value}: no user information`);
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) {
    if (production) throw new ClientError('invalid_redirect_uri', `${field}: ${value}: https only in production`);
    return;
  }
  throw new ClientError('invalid_redirect_uri', `${field}: ${value}: https only (http only to a loopback address in development)`);
}

/**
 * Validates a client as it is about to be stored (RFC 7591 §2, errors of §3.2.2): the field
 * shapes and cross-field rules of the client file ({@link clientSchema}), exact redirect URIs
 * (https; http only to loopback outside production), an authentication method consistent with
 * the grant types, complete mTLS metadata, known resource servers, then oidc-provider's own
 * checks. Returns the client as parsed (defaults filled in).
 */
export async function validateClient(input: Record<string, unknown>, context: ValidationContext): Promise<ClientConfig> {
  const unstorable = unstorableField(input);
  if (unstorable) throw invalidMetadata(`${unstorable}: no U+0000 and no lone UTF-16 surrogates`);
  const parsed = clientSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : 'metadata');
    throw invalidMetadata(`${field}: ${issue.message}`);
  }
  const client = parsed.data;
  for (const uri of client.redirect_uris) checkRedirectUri(uri, 'redirect_uris', context.production);
  for (const uri of client.post_logout_redirect_uris) checkRedirectUri(uri, 'post_logout_redirect_uris', context.production);
  const method = client.token_endpoint_auth_method;
  if (method === 'none' && client.grant_types.includes('client_credentials')) {
    throw invalidMetadata('grant_types: client_credentials needs an authenticated client (token_endpoint_auth_method none)');
  }
  if (client.grant_types.includes('authorization_code')) {
    if (client.redirect_uris.length === 0) throw new ClientError('invalid_redirect_uri', 'redirect_uris: required for authorization_code');
    if (!client.response_types.includes('code')) throw invalidMetadata('response_types: authorization_code needs response type code');
  } else if (client.response_types.length > 0) {
    throw invalidMetadata('response_types: only with grant type authorization_code');
  }
  if (client.grant_types.includes('refresh_token') && !client.grant_types.some((grant) => USER_GRANTS.has(grant) && grant !== 'refresh_token')) {
    throw invalidMetadata('grant_types: refresh_token only with authorization_code');
  }
  if (client.redirect_uris.length > 0 && !client.grant_types.includes('authorization_code')) {
    throw invalidMetadata('redirect_uris: only with grant type authorization_code');
  }
  if (!SECRET_METHODS.has(method) && client.client_secret_hash) throw invalidMetadata(`${method}: a client of this method has no secret`);
  if (method === 'self_signed_tls_client_auth' && !client.jwks?.keys.some((key) => Array.isArray(key['x5c']) && key['x5c'].length > 0)) {
    throw invalidMetadata('jwks: self_signed_tls_client_auth needs a key with its certificate in x5c (RFC 8705 §2.2)');
  }
  for (const key of ['resources', 'serves'] as const) {
    const unknown = client[key].find((resource) => !context.resources.has(resource));
    if (unknown) throw invalidMetadata(`${key}: unknown resource server ${unknown}`);
  }
  if (context.providerValidate) {
    try {
      await context.providerValidate(toClientMetadata(client));
    } catch (error) {
      const oauth = error as { error?: string; error_description?: string };
      const code = oauth.error === 'invalid_redirect_uri' ? 'invalid_redirect_uri' : 'invalid_client_metadata';
      if (!oauth.error) throw error;
      throw new ClientError(code, oauth.error_description ?? oauth.error, { cause: error });
    }
  }
  return client;
}
