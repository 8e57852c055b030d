/**
 * The one seam between Custos and oidc-provider's internals. Anything that reaches past
 * oidc-provider's documented configuration lives here, so upgrades have one place to check.
 */
import { createHash } from 'node:crypto';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
// @ts-expect-error -- untyped internal module: the per-provider private state (grant handlers).
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
// @ts-expect-error -- untyped internal module: oidc-provider's DPoP proof validation and replay check.
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';
// @ts-expect-error -- untyped internal module: the `dpop_bound_access_tokens` requirement.
import { checkDpopRequired } from 'oidc-provider/lib/helpers/sender_constraints.js';
// @ts-expect-error -- untyped internal module: how a token request's resource is resolved.
import resolveResource from 'oidc-provider/lib/helpers/resolve_resource.js';

type SecretClient = { clientId: string; clientSecret: string; clientAuthMethod: string };

/**
 * oidc-provider's replay detection (a DPoP proof's `jti`, a client assertion's `jti`) looks the
 * id up and then saves it: two requests carrying the same proof at once both pass. Replace
 * `ReplayDetection.unique` with `recordOnce`, one atomic statement that is true for exactly one
 * caller per id (lib/models/replay_detection.js keys the id the same way).
 */
export function useAtomicReplayDetection(provider: Provider, recordOnce: (id: string, iss: string, expiresIn: number) => Promise<boolean>): void {
  const model = (provider as unknown as { ReplayDetection: { unique(iss: string, jti: string, exp: number): Promise<boolean> } }).ReplayDetection;
  model.unique = async (iss, jti, exp) => {
    const id = createHash('sha256').update(`${iss}${jti}`).digest('base64url');
    return recordOnce(id, iss, Math.max(1, exp - Math.floor(Date.now() / 1000)));
  };
}

/**
 * Client secrets are stored as argon2id hashes in the client's `client_secret` metadata;
 * replace the plaintext comparison with `compare` (awaited by oidc-provider's client
 * authentication, lib/shared/client_auth.js, which accepts either secret method for either
 * registration), given the request's context so it can check the method too.
 */
export function useHashedClientSecrets(
  provider: Provider,
  compare: (client: SecretClient, secret: string, ctx: KoaContextWithOIDC | undefined) => Promise<boolean>,
): void {
  const prototype = provider.Client.prototype as unknown as {
    compareClientSecret(this: Partial<SecretClient>, actual: string): Promise<boolean>;
  };
  prototype.compareClientSecret = async function compareHashedClientSecret(actual: string) {
    if (typeof this.clientSecret !== 'string' || typeof actual !== 'string') return false;
    return compare(this as SecretClient, actual, currentContext());
  };
}

/**
 * oidc-provider's `Client.find` (lib/models/client.js) recognises a client read from the adapter
 * by a SHA-256 over `JSON.stringify` of its metadata, on every lookup (~9 µs per token). The
 * client registry hands the adapter the same metadata object until the client changes, so the
 * built `Client` is kept per metadata object: a change brings a new object, hence a new `Client`.
 * Only for adapter-backed clients whose metadata comes from memory.
 */
export function reuseClientsPerMetadata(provider: Provider): void {
  const Client = provider.Client as unknown as {
    adapter: { find(id: string): Promise<object | undefined> };
    find(id: string): Promise<unknown>;
  };
  const find = Client.find.bind(Client);
  const built = new WeakMap<object, unknown>();
  Client.find = async function findClient(id: string): Promise<unknown> {
    const properties = typeof id === 'string' && id ? await Client.adapter.find(id) : undefined;
    const known = properties && built.get(properties);
    if (known) return known;
    const client = await find(id);
    // Kept only when the metadata did not change meanwhile (a reload between the two reads).
    if (properties && client && (await Client.adapter.find(id)) === properties) built.set(properties, client);
    return client;
  };
}

/**
 * The request oidc-provider is serving on this async path (its AsyncLocalStorage, `Provider.ctx`),
 * for adapter calls that must know why they are made (a grant revoked at logout, on refresh-token
 * reuse, on code replay, at the revocation endpoint); undefined outside a request.
 */
export function currentContext(): KoaContextWithOIDC | undefined {
  return (Provider as unknown as { ctx?: KoaContextWithOIDC }).ctx;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'] as const;

/** The methods oidc-provider's router answers on `path` (none when the path is not one of its routes). */
export function allowedMethods(provider: Provider, path: string): string[] {
  const { router } = instance(provider) as { router: { match(method: string, path: string): unknown } };
  return METHODS.filter((method) => router.match(method, path) !== undefined);
}

const GRANT_NOT_ALLOWED = 'requested grant type is not allowed for this client';

/**
 * oidc-provider answers a grant type the client is not registered for with `invalid_request`
 * (lib/actions/token.js); RFC 6749 §5.2 (and RFC 8693 §2.2.2) call that `unauthorized_client`.
 * Rewrites that one answer from the token endpoint's `grant.error` event, which oidc-provider
 * emits after it has set the error body and before the answer is sent (no async layer around
 * every token request).
 */
export function unauthorizedClientForDisallowedGrant(provider: Provider): void {
  provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === GRANT_NOT_ALLOWED) {
      ctx.body = { ...body, error: 'unauthorized_client' };
    }
  });
}

interface StructuredTokenHandlers {
  introspect(ctx: KoaContextWithOIDC, caller: { clientId: string }, token: string): Promise<Record<string, unknown>>;
  revoke(caller: { clientId: string }, token: string): Promise<boolean>;
}

/**
 * oidc-provider refuses JWT access tokens at its introspection and revocation endpoints
 * (lib/shared/reject_structured_tokens.js, `unsupported_token_type`) after it has
 * authenticated the client. For those responses only, answer with Custos's own handling
 * of its JWT access tokens, keeping oidc-provider's client authentication.
 */
export function structuredTokenEndpoints(handlers: StructuredTokenHandlers) {
  // Introspection and revocation are POST-only endpoints apart from `/token`; nothing else is looked at.
  return function answerStructuredTokens(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<unknown> {
    return ctx.method === 'POST' && ctx.path !== '/token' ? answer(ctx, next) : next();
  };
  async function answer(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<void> {
    await next();
    const body = ctx.body as { error?: unknown } | undefined;
    if (ctx.status !== 400 || body?.error !== 'unsupported_token_type') return;
    const route = ctx.oidc?.route;
    const client = ctx.oidc?.client;
    const token = ctx.oidc?.params?.token;
    if (!client || typeof token !== 'string' || (route !== 'introspection' && route !== 'revocation')) return;
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    if (route === 'introspection') {
      ctx.body = await handlers.introspect(ctx, { clientId: client.clientId }, token);
      return;
    }
    if (await handlers.revoke({ clientId: client.clientId }, token)) {
      ctx.body = '';
    } else {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' };
    }
  }
}

/**
 * oidc-provider silently drops requested scopes it does not know at the client credentials
 * grant (lib/helpers/grant_authorization.js); RFC 6749 §5.2 expects `invalid_scope`. Wraps the
 * registered `client_credentials` handler with that check.
 */
export function rejectUnknownClientCredentialsScopes(provider: Provider, knownScopes: ReadonlySet<string>): void {
  const { grantTypeHandlers } = instance(provider) as { grantTypeHandlers: Map<string, (ctx: KoaContextWithOIDC) => Promise<void>> };
  const original = grantTypeHandlers.get('client_credentials');
  if (!original) return;
  grantTypeHandlers.set('client_credentials', async function clientCredentialsKnownScopes(ctx) {
    const scope = ctx.oidc.params?.scope;
    if (typeof scope === 'string') {
      const unknown = scope.split(' ').find((value) => value && !knownScopes.has(value));
      if (unknown !== undefined) throw new errors.InvalidScope(`requested scope ${unknown} is not recognised`, undefined as never);
    }
    return original(ctx);
  });
}

/**
 * Gives an access token its `jti` before it is saved, the way `save()` would (the model's
 * `generateTokenId`, lib/models/formats/index.js, which also fixes the token's format from its
 * resource server): the token exchange records the `jti` before it signs the token. Set
 * `resourceServer` first.
 */
export function assignTokenId(token: InstanceType<Provider['AccessToken']>): string {
  const model = token as unknown as { jti?: string; generateTokenId(): string };
  model.jti = model.generateTokenId();
  return model.jti;
}

/**
 * For a grant Custos registers itself (token exchange): the request's DPoP proof checked exactly
 * as oidc-provider's own grants check it (signature, `typ`, `htm`, `htu`, `iat` or the server
 * nonce, the `jti` once through the adapter), a client registered with `dpop_bound_access_tokens`
 * made to send one, and the proof key's thumbprint returned (undefined without a proof).
 */
export async function checkTokenRequestDpop(ctx: KoaContextWithOIDC): Promise<string | undefined> {
  const provider = ctx.oidc.provider;
  const dPoP = (await validateDpop(provider, ctx)) as { thumbprint: string } | undefined;
  checkDpopRequired(provider, ctx, dPoP);
  if (!dPoP) return undefined;
  await checkDpopReplay(provider, ctx, dPoP, ctx.oidc.client!.clientId);
  return dPoP.thumbprint;
}

type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;

/**
 * Runs `check` before oidc-provider's own handler of `grantType` (lib/actions/grants/): it can
 * refuse a token request before the handler consumes a code or rotates a refresh token.
 */
export function beforeGrant(provider: Provider, grantType: string, check: (ctx: KoaContextWithOIDC) => Promise<void>): void {
  const { grantTypeHandlers } = instance(provider) as { grantTypeHandlers: Map<string, GrantHandler> };
  const original = grantTypeHandlers.get(grantType);
  if (!original) return;
  grantTypeHandlers.set(grantType, async function checkedGrant(ctx) {
    await check(ctx);
    return original(ctx);
  });
}

/** A code or refresh token as oidc-provider's resource resolution reads it. */
export type ResourceSource = InstanceType<Provider['AuthorizationCode']> | InstanceType<Provider['RefreshToken']>;

/**
 * The resource the access token of this token request will be for, resolved exactly as the
 * authorization_code and refresh_token grants resolve it (lib/helpers/resolve_resource.js): the
 * `resource` parameter, else the granted resource (`useGrantedResource`, `defaultResource` among
 * several); undefined for a token without a resource (userinfo). Throws `invalid_target` as they do.
 */
export async function resolveTokenResource(ctx: KoaContextWithOIDC, source: ResourceSource): Promise<string | undefined> {
  const { features } = (instance(ctx.oidc.provider) as { configuration: { features: { userinfo: unknown; resourceIndicators: unknown } } }).configuration;
  const scopes = ctx.oidc.params?.scope && ctx.oidc.params.grant_type === 'refresh_token' ? ctx.oidc.requestParamScopes : undefined;
  const resolved = (await resolveResource(ctx, source, { userinfo: features.userinfo, resourceIndicators: features.resourceIndicators }, scopes)) as unknown;
  return typeof resolved === 'string' ? resolved : undefined;
}
