import { z } from 'zod';
import { ssfReceiverSchema } from './ssf-receiver.js';
import { ACR_VALUES } from '../verify/acr.js';

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope token (RFC 6749 §3.3)');
const ttl = z.number().int().min(1).max(366 * 24 * 3600);
const absoluteUri = z.string().refine((value) => URL.canParse(value), 'an absolute URI');

/** A protected API: the resource indicator (RFC 8707) clients ask tokens for; also the tokens' `aud`. */
export const resourceServerSchema = z
  .strictObject({
    identifier: absoluteUri,
    scopes: z.array(scopeToken).default([]),
    accessTokenTTL: ttl.default(300),
    /** What each scope lets a client do, in words for the consent page ("See your orders"); optional per scope. */
    scope_descriptions: z.record(scopeToken, z.string().trim().min(1).max(200)).default({}),
    /** Tokens for this API need a two-factor sign-in (acr urn:custos:acr:mfa or stronger); not client_credentials tokens. */
    require_mfa: z.boolean().optional(),
    /** The weakest sign-in (acr) behind a token for this API: asked for at sign-in, enforced at the token endpoint and token exchange. */
    minimum_acr: z.enum(ACR_VALUES).optional(),
  })
  .superRefine((rs, ctx) => {
    for (const scope of Object.keys(rs.scope_descriptions)) {
      if (!rs.scopes.includes(scope)) ctx.addIssue({ code: 'custom', path: ['scope_descriptions', scope], message: 'describes a scope that is not in scopes' });
    }
  });

/** Client authentication methods Custos accepts (no shared-secret JWTs: secrets are stored hashed). */
export const CLIENT_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
  'none',
] as const;
const clientAuthMethod = z.enum(CLIENT_AUTH_METHODS);

/** The fields of a registered client (RFC 7591 metadata names), before the cross-field rules of {@link clientSchema}. */
export const clientFields = z.strictObject({
    client_id: z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, 'an identifier of letters, digits, ".", "_", "~", "-"'),
    client_name: z.string().optional(),
    client_secret_hash: z.string().startsWith('$argon2id$', 'an argon2id hash ($argon2id$...)').optional(),
    token_endpoint_auth_method: clientAuthMethod.default('client_secret_basic'),
    grant_types: z.array(z.string().min(1)).min(1),
    response_types: z.array(z.string()).default([]),
    redirect_uris: z.array(absoluteUri).default([]),
    post_logout_redirect_uris: z.array(absoluteUri).default([]),
    scope: z.string().optional(),
    default_resource: absoluteUri.optional(),
    resources: z.array(absoluteUri).default([]),
    serves: z.array(absoluteUri).default([]),
    introspection: z.boolean().default(false),
    /** A client of the same operator: the user is not asked to consent (issue 7). */
    first_party: z.boolean().default(false),
    /** Sign-in to this client needs two factors (acr urn:custos:acr:mfa or stronger). */
    require_mfa: z.boolean().default(false),
    /** The weakest sign-in (acr) this client accepts; a weaker session is asked only for what is missing. */
    minimum_acr: z.enum(ACR_VALUES).optional(),
    /** OpenID Connect Back-Channel Logout 1.0: where logout tokens are POSTed. */
    backchannel_logout_uri: absoluteUri.optional(),
    backchannel_logout_session_required: z.boolean().default(true),
    tls_client_auth_san_dns: z.string().optional(),
    tls_client_auth_san_uri: z.string().optional(),
    tls_client_auth_subject_dn: z.string().optional(),
    /** Defaults to true for tls_client_auth and self_signed_tls_client_auth (RFC 8705 §3). */
    tls_client_certificate_bound_access_tokens: z.boolean().optional(),
    /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof. */
    dpop_bound_access_tokens: z.boolean().optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
    /** RFC 9126 §5: this client's authorization requests must come through PAR. */
    require_pushed_authorization_requests: z.boolean().optional(),
    /** `fapi2`: the FAPI 2.0 Security Profile is enforced for this client (docs/api-developers.md). */
    profile: z.enum(['fapi2']).optional(),
  });

/** A registered client (RFC 7591 metadata names), with the secret only as an argon2id hash. */
export const clientSchema = clientFields.superRefine((client, ctx) => {
    const secretMethods = ['client_secret_basic', 'client_secret_post'];
    if (secretMethods.includes(client.token_endpoint_auth_method) && !client.client_secret_hash) {
      ctx.addIssue({ code: 'custom', path: ['client_secret_hash'], message: `required for ${client.token_endpoint_auth_method}` });
    }
    const subjects = [client.tls_client_auth_san_dns, client.tls_client_auth_san_uri, client.tls_client_auth_subject_dn].filter(
      (value) => value !== undefined,
    );
    if (client.token_endpoint_auth_method === 'tls_client_auth' && subjects.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['tls_client_auth_san_dns'], message: 'tls_client_auth needs exactly one tls_client_auth_* subject (RFC 8705 §2.1.2)' });
    }
    if (client.token_endpoint_auth_method === 'self_signed_tls_client_auth' && !client.jwks) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'self_signed_tls_client_auth needs jwks with the x5c certificate (RFC 8705 §2.2)' });
    }
    const certificateBound = client.tls_client_certificate_bound_access_tokens ?? ['tls_client_auth', 'self_signed_tls_client_auth'].includes(client.token_endpoint_auth_method);
    if (client.dpop_bound_access_tokens && certificateBound) {
      ctx.addIssue({
        code: 'custom',
        path: ['dpop_bound_access_tokens'],
        message: 'a token has one binding: set tls_client_certificate_bound_access_tokens to false for a DPoP-bound mTLS client (RFC 9449 §5.2)',
      });
    }
    if (client.default_resource && !client.resources.includes(client.default_resource)) {
      ctx.addIssue({ code: 'custom', path: ['default_resource'], message: 'must be one of resources' });
    }
    if (client.profile === 'fapi2') {
      for (const issue of fapi2Problems(client, certificateBound)) ctx.addIssue({ code: 'custom', ...issue });
    }
  });

/** FAPI 2.0 client authentication (Security Profile §5.3.2.1): mTLS or private_key_jwt, never a shared secret. */
const FAPI2_AUTH_METHODS = ['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'];

/** What a client registered with `profile: "fapi2"` must declare, by the FAPI 2.0 Security Profile (final). */
function fapi2Problems(
  client: { token_endpoint_auth_method: string; grant_types: string[]; response_types: string[]; redirect_uris: string[]; dpop_bound_access_tokens?: boolean; require_pushed_authorization_requests?: boolean },
  certificateBound: boolean,
): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  if (!FAPI2_AUTH_METHODS.includes(client.token_endpoint_auth_method)) {
    problems.push({ path: ['token_endpoint_auth_method'], message: `fapi2 needs ${FAPI2_AUTH_METHODS.join(', ')} (confidential clients only)` });
  }
  if (!client.dpop_bound_access_tokens && !certificateBound) {
    problems.push({ path: ['dpop_bound_access_tokens'], message: 'fapi2 needs sender-constrained tokens: dpop_bound_access_tokens or tls_client_certificate_bound_access_tokens' });
  }
  const grants = client.grant_types.filter((grant) => !['authorization_code', 'refresh_token', 'client_credentials'].includes(grant));
  if (grants.length > 0) problems.push({ path: ['grant_types'], message: `fapi2 allows authorization_code, refresh_token and client_credentials, not ${grants.join(', ')}` });
  if (client.response_types.some((type) => type !== 'code')) problems.push({ path: ['response_types'], message: 'fapi2 allows response_type code only' });
  if (client.require_pushed_authorization_requests === false) {
    problems.push({ path: ['require_pushed_authorization_requests'], message: 'fapi2 requires pushed authorization requests (leave it out or true)' });
  }
  client.redirect_uris.forEach((uri, index) => {
    if (!uri.startsWith('https://')) problems.push({ path: ['redirect_uris', String(index)], message: 'fapi2 redirect URIs use https' });
  });
  return problems;
}

/** Token exchange policy (RFC 8693) for one client: which resume scopes it may mint, for whom. */
export const exchangePolicySchema = z.strictObject({
  client_id: z.string().min(1),
  scopes: z
    .record(
      z.string().regex(/^resume_[\x21\x23-\x5B\x5D-\x7E]+$/, 'a resume_* scope'),
      z.strictObject({ lifetime: ttl }),
    )
    .refine((value) => Object.keys(value).length > 0, 'at least one resume_* scope'),
  audiences: z.array(absoluteUri).min(1),
  default_audience: absoluteUri.optional(),
  /**
   * Whether this client may exchange a DPoP-bound subject token (`cnf.jkt`, RFC 9449 §6). Off by
   * default: the resume token could be used without the user's client's key.
   */
  accept_dpop_bound_subject_tokens: z.boolean().optional(),
});

/**
 * Dynamic client registration (RFC 7591, RFC 7592): off unless enabled; every registration needs
 * an initial access token an administrator issued; what a registered client may ask for.
 */
export const clientRegistrationSchema = z.strictObject({
  enabled: z.boolean().default(false),
  grant_types: z.array(z.string().min(1)).default(['client_credentials']),
  token_endpoint_auth_methods: z.array(clientAuthMethod).default(['client_secret_basic', 'tls_client_auth', 'self_signed_tls_client_auth']),
  /** Scopes a registered client may be given (its `scope` must be a subset). */
  scopes: z.array(scopeToken).default([]),
  /** Resource servers a registered client may ask tokens for. */
  resources: z.array(absoluteUri).default([]),
  /** Redirect URIs must be https, loopback included (on top of the rules for every client). */
  https_redirect_uris_only: z.boolean().default(true),
});

export const configFilesSchema = z
  .strictObject({
    demo: z.boolean().default(false),
    resource_servers: z.array(resourceServerSchema).default([]),
    clients: z.array(clientSchema).default([]),
    token_exchange: z
      .strictObject({
        max_lifetime: ttl.default(30 * 24 * 3600),
        policies: z.array(exchangePolicySchema).default([]),
      })
      .default({ max_lifetime: 30 * 24 * 3600, policies: [] }),
    /** Trusted SSF transmitters whose SETs Custos receives (src/config/ssf-receiver.ts); absent: the receiver is off. */
    ssf_receiver: ssfReceiverSchema.optional(),
    client_registration: clientRegistrationSchema.default({
      enabled: false,
      grant_types: ['client_credentials'],
      token_endpoint_auth_methods: ['client_secret_basic', 'tls_client_auth', 'self_signed_tls_client_auth'],
      scopes: [],
      resources: [],
      https_redirect_uris_only: true,
    }),
  })
  .superRefine((config, ctx) => {
    const resources = new Set(config.resource_servers.map((rs) => rs.identifier));
    const clientIds = new Set<string>();
    config.clients.forEach((client, index) => {
      if (clientIds.has(client.client_id)) {
        ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `duplicate client_id ${client.client_id}` });
      }
      clientIds.add(client.client_id);
      for (const key of ['resources', 'serves'] as const) {
        client[key].forEach((resource, i) => {
          if (!resources.has(resource)) {
            ctx.addIssue({ code: 'custom', path: ['clients', index, key, i], message: `unknown resource server ${resource}` });
          }
        });
      }
    });
    config.token_exchange.policies.forEach((policy, index) => {
      // A policy may name a client registered through the admin API (src/clients/), not in this file.
      if (policy.default_audience && !policy.audiences.includes(policy.default_audience)) {
        ctx.addIssue({ code: 'custom', path: ['token_exchange', 'policies', index, 'default_audience'], message: 'must be one of audiences' });
      }
      for (const [scope, rule] of Object.entries(policy.scopes)) {
        if (rule.lifetime > config.token_exchange.max_lifetime) {
          ctx.addIssue({ code: 'custom', path: ['token_exchange', 'policies', index, 'scopes', scope, 'lifetime'], message: `exceeds token_exchange.max_lifetime (${config.token_exchange.max_lifetime}s)` });
        }
      }
    });
  });

export type ConfigFiles = z.infer<typeof configFilesSchema>;
export type ResourceServerConfig = z.infer<typeof resourceServerSchema>;
export type ClientConfig = z.infer<typeof clientSchema>;
export type ExchangePolicy = z.infer<typeof exchangePolicySchema>;
export type ClientRegistrationPolicy = z.infer<typeof clientRegistrationSchema>;
