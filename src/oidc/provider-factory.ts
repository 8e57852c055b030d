import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { AdapterConstructor } from 'oidc-provider';
import { CLIENT_AUTH_METHODS, type ClientConfig, type ConfigFiles } from '../config/files.js';
import { providerSigningKeys, type SigningKeySet } from '../keys/signing-keys.js';
import type { ChainValidator } from '../pki/chain.js';
import { SCOPE_CLAIMS } from './accounts.js';
import { toClientMetadata } from './clients.js';
import { loadExistingGrant } from './first-party.js';
import { outboundFetch, rpInitiatedLogoutFeature } from './logout.js';
import { rejectUnknownClientCredentialsScopes, reuseClientsPerMetadata, unauthorizedClientForDisallowedGrant, useAtomicReplayDetection, useHashedClientSecrets } from './internals.js';
import { DPOP_SIGNING_ALGS, dpopFeature } from './dpop.js';
import { fapi2Feature, fapi2ProfileValidator, isFapi2 } from './fapi2.js';
import { multiAudienceCustomizer } from './jwt-audiences.js';
import { mtlsFeature } from './mtls.js';
import { resourceIndicatorsFeature, type ResourcePolicy } from './resource-servers.js';
import type { AccessPolicies } from './token-policies.js';
import { authenticationClaims, CLIENT_POLICY_METADATA, signinInteractionPolicy, validateClientPolicy } from '../signin/authentication-context.js';
import { enforceResourceAcr } from '../signin/resource-acr.js';
import { ACR_VALUES } from '../verify/acr.js';
import { REGISTRATION_PATH } from '../clients/registration.routes.js';

/** Everything the provider needs, passed from the composition root. */
export interface ProviderDeps {
  issuer: string;
  adapter: AdapterConstructor;
  files: ConfigFiles;
  keys: SigningKeySet;
  cookieKeys: string[];
  /** DPOP_REQUIRE_NONCE: proofs must carry a server nonce (RFC 9449 §8). */
  requireDpopNonce?: boolean;
  /** Checks a presented client secret (hash, registered method), see client-secrets.ts. */
  compareSecret: Parameters<typeof useHashedClientSecrets>[1];
  /** Validates client certificate chains against the configured CA bundle (RFC 8705 §2.1). */
  chain: ChainValidator;
  /** Which client may get tokens for which resource (RFC 8707), built once by the composition root. */
  policy: ResourcePolicy;
  /** Who may introspect and revoke which token. */
  access: AccessPolicies;
  /** oidc-provider `findAccount`: users from the database (src/oidc/accounts.ts). */
  findAccount: NonNullable<Configuration['findAccount']>;
  /** Records a replay-detection id once, atomically (DPoP proofs, client assertions); true for the first caller only. */
  recordOnce: (id: string, iss: string, expiresIn: number) => Promise<boolean>;
  /**
   * Clients from the database (src/clients/): oidc-provider finds them through the adapter's
   * `Client` model instead of the static list of the config file.
   */
  clients?: {
    lookup(clientId: string): ClientConfig | undefined;
    all(): readonly ClientConfig[];
    /** Every active certificate subject of a client (old and new during a rotation). */
    subjects(clientId: string): ReadonlyArray<{ property: string; value: string }>;
  };
  /** Called with the built provider before it serves (register grants, listeners). */
  extend?: (provider: Provider) => void;
}

const BROWSER_ROUTES = new Set([
  'authorization',
  'resume',
  'end_session',
  'end_session_confirm',
  'end_session_success',
  'code_verification',
  'device_resume',
]);

/** Lifetime (s) of what an unauthenticated request may have the provider store. */
export const ANONYMOUS_TTL = 600;

const ASYMMETRIC_ONLY = ['ES256', 'PS256', 'EdDSA'] as const;

/**
 * Builds the oidc-provider instance: RFC 9068 ES256 JWT access tokens, RFC 8707 resource
 * indicators, client credentials, RFC 7662 introspection and RFC 7009 revocation.
 */
export function createProvider(deps: ProviderDeps): Provider {
  const { policy, access } = deps;
  const scopes = [...new Set(['openid', 'offline_access', 'email', 'profile', ...deps.files.resource_servers.flatMap((rs) => rs.scopes)])];
  const registry = deps.clients;
  const firstParty = new Set(deps.files.clients.filter((client) => client.first_party).map((client) => client.client_id));
  const isFirstParty = registry ? (clientId: string) => registry.lookup(clientId)?.first_party === true : (clientId: string) => firstParty.has(clientId);

  const configuration: Configuration = {
    adapter: deps.adapter,
    ...(registry ? {} : { clients: deps.files.clients.map(toClientMetadata) }),
    jwks: providerSigningKeys(deps.keys),
    cookies: { keys: deps.cookieKeys },
    scopes,
    // ID tokens say how and when the user signed in: acr, amr and auth_time with every openid
    // scope (src/signin/authentication-context.ts); userinfo has none of them.
    claims: { openid: [...SCOPE_CLAIMS.openid, 'acr', 'amr', 'auth_time'], email: [...SCOPE_CLAIMS.email], profile: [...SCOPE_CLAIMS.profile] },
    // ID tokens carry the scopes' claims (roles, email) even when an access token is issued too.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    clientAuthMethods: [...CLIENT_AUTH_METHODS],
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'ES256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      // ID tokens always say when the user signed in (auth_time), as access tokens do.
      require_auth_time: true,
    },
    // Sign-in strength (src/signin/authentication-context.ts): the documented acr values, and a
    // client's require_mfa / minimum_acr, which the login prompt enforces (step-up).
    acrValues: [...ACR_VALUES],
    // …and `profile: "fapi2"`, which puts a client under the FAPI 2.0 Security Profile (src/oidc/fapi2.ts).
    extraClientMetadata: {
      properties: [...CLIENT_POLICY_METADATA, 'profile'],
      validator: (ctx, key, value, metadata) => {
        validateClientPolicy(ctx, key, value);
        fapi2ProfileValidator(ctx, key, value, metadata);
      },
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256'],
      userinfoSigningAlgValues: ['ES256'],
      introspectionSigningAlgValues: ['ES256'],
      authorizationSigningAlgValues: ['ES256'],
      requestObjectSigningAlgValues: [...ASYMMETRIC_ONLY],
      clientAuthSigningAlgValues: [...ASYMMETRIC_ONLY],
      dPoPSigningAlgValues: [...DPOP_SIGNING_ALGS],
    },
    pkce: { required: () => true },
    // Dynamic registration is Custos' own route (src/clients/registration.routes.ts), not
    // oidc-provider's: its endpoint is announced only when enabled, from the configured issuer.
    ...(deps.files.client_registration.enabled ? { discovery: { registration_endpoint: `${deps.issuer}${REGISTRATION_PATH}` } } : {}),
    // redirect_uri is always required (OIDC Core §3.1.2.1), also for single-redirect clients.
    allowOmittingSingleRegisteredRedirectUri: false,
    ttl: {
      AuthorizationCode: 60,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      IdToken: 3600,
      // What an anonymous browser can make the provider store lives minutes, not days: an
      // interaction (a valid authorization request awaiting login) and a session without an
      // account (e.g. a logout prompt) expire after ANONYMOUS_TTL; signed-in sessions last 14 days.
      Interaction: ANONYMOUS_TTL,
      Grant: 14 * 24 * 3600,
      Session: (_ctx, session) => (session.accountId ? 14 * 24 * 3600 : ANONYMOUS_TTL),
      RefreshToken: 14 * 24 * 3600,
    },
    // The login prompt also asks for the minimum sign-in of the resource servers a request names.
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: signinInteractionPolicy(policy.minimumAcr) },
    formats: { customizers: { jwt: multiAudienceCustomizer } } as Configuration['formats'],
    // Custom grants put their claims (act, event_payload_hash) in token.extra; keep them. Tokens
    // issued under a session carry its `sid` (one client's authorization in one browser session,
    // as in ID tokens and logout tokens): revoking the session or its grant cuts them off by it.
    // Tokens of a sign-in carry its acr, amr and auth_time (token exchange copies them in extra).
    extraTokenClaims: async (ctx, token) => {
      const { extra, sid } = token as { extra?: Record<string, unknown>; sid?: unknown };
      const claims = { ...authenticationClaims(ctx), ...extra };
      return typeof sid === 'string' ? { ...claims, sid } : claims;
    },
    findAccount: deps.findAccount,
    loadExistingGrant: loadExistingGrant(isFirstParty),
    // Confidential clients allowed the refresh_token grant get a refresh token (bound to the
    // session unless offline_access was granted); every use rotates it, and presenting a
    // rotated one again revokes the whole grant (oidc-provider's reuse detection). A public
    // client gets one only on a request with a DPoP proof (already validated by the grant):
    // oidc-provider then binds the refresh token to that key (RFC 9449 §5), and every
    // refresh needs a proof by the same key.
    issueRefreshToken: async (ctx, client) =>
      client.grantTypeAllowed('refresh_token') && (client.clientAuthMethod !== 'none' || Boolean(ctx.get('DPoP'))),
    // FAPI 2.0 (§5.3.2.1) asks not to rotate the refresh tokens of its (confidential, sender-
    // constrained) clients: a lost response would otherwise lock the client out.
    rotateRefreshToken: (ctx) => !isFapi2(ctx.oidc.client),
    fetch: outboundFetch(registry ? () => registry.all() : deps.files.clients) as Configuration['fetch'],
    // CORS at the token endpoint only for a browser app: a public client, from the origin of one
    // of its registered redirect URIs (a SPA such as examples/spa). Confidential clients never.
    clientBasedCORS: (_ctx, origin, client) =>
      origin !== 'null' && client.clientAuthMethod === 'none' && (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin),
    // The @types union for `features` cannot express these combinations; the shapes follow docs/README.md.
    features: {
      devInteractions: { enabled: false },
      // node:crypto ES256 signing, on libuv's thread pool (src/keys/node-signing-key.ts).
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: access.introspection },
      revocation: { enabled: true, allowedPolicy: access.revocation },
      resourceIndicators: resourceIndicatorsFeature(policy),
      mTLS: mtlsFeature(deps.chain, registry?.subjects),
      dPoP: dpopFeature(deps.cookieKeys, deps.requireDpopNonce),
      fapi: fapi2Feature(),
      rpInitiatedLogout: rpInitiatedLogoutFeature(),
      backchannelLogout: { enabled: true },
    } as Configuration['features'],
    // HTML only where a browser is the user agent; token, introspection, revocation and the
    // other back-channel endpoints always answer JSON (RFC 6749 §5.2).
    renderError: async (ctx: KoaContextWithOIDC, out) => {
      if (!BROWSER_ROUTES.has(ctx.oidc?.route ?? '')) {
        ctx.type = 'json';
        ctx.body = out;
        return;
      }
      ctx.type = 'html';
      const escape = (value: unknown) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
      ctx.body = `<!doctype html><meta charset="utf-8"><title>Error</title><h1>${escape(out.error)}</h1>${
        out.error_description ? `<p>${escape(out.error_description)}</p>` : ''
      }`;
    },
  };

  const provider = new Provider(deps.issuer, configuration);
  useHashedClientSecrets(provider, deps.compareSecret);
  useAtomicReplayDetection(provider, deps.recordOnce);
  if (deps.clients) reuseClientsPerMetadata(provider);
  unauthorizedClientForDisallowedGrant(provider);
  rejectUnknownClientCredentialsScopes(provider, new Set(scopes));
  // …and refuses at the token endpoint a code or refresh token whose sign-in is below it.
  if (deps.files.resource_servers.some((rs) => policy.minimumAcr(rs.identifier) !== undefined)) enforceResourceAcr(provider, policy.minimumAcr);
  deps.extend?.(provider);
  return provider;
}
