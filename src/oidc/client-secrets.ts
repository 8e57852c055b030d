import type { Middleware } from 'koa';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { SecretVerifierBusy, type SecretVerifier } from '../iam/secret-verifier.js';

/** Seconds a client is asked to wait when secret verification is overloaded. */
const RETRY_AFTER_SECONDS = 5;
const BUSY_DESCRIPTION = 'too many client authentications at this moment: retry shortly';

type SecretMethod = 'client_secret_basic' | 'client_secret_post';

/** The client secret a request presents, and how (RFC 6749 §2.3.1: Basic header or `client_secret` body parameter). */
export function presentedSecret(ctx: KoaContextWithOIDC): { method: SecretMethod; secret: string } | undefined {
  const inBody = (ctx.oidc?.params as { client_secret?: unknown } | undefined)?.client_secret;
  if (typeof inBody === 'string' && inBody) return { method: 'client_secret_post', secret: inBody };
  const basic = /^basic +([A-Za-z0-9+/]+=*)$/i.exec(ctx.get('authorization'));
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  try {
    return { method: 'client_secret_basic', secret: decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', '%20')) };
  } catch {
    return undefined;
  }
}

/**
 * Client secret authentication for oidc-provider:
 *
 * - `compare` checks a presented secret against the client's argon2id hash, and accepts it only
 *   through the client's registered `token_endpoint_auth_method` (a `client_secret_basic` client
 *   sending its secret in the body is refused, and the reverse);
 * - `middleware` makes every failed client authentication that presented a secret cost one
 *   argon2 verification, through the same bounded verifier, also when no hash was compared (an
 *   unknown `client_id`, a client registered for another method): the answer's timing does not
 *   tell which client ids exist;
 * - overload (the verifier's queue is full) answers 503 `temporarily_unavailable` with
 *   `Retry-After` (RFC 6749 §5.2 error JSON), for known and unknown clients alike, never a 401
 *   that would tell a client its correct secret is wrong.
 */
export function clientSecretAuthentication(
  verifier: SecretVerifier,
  /** The hashes a client's secret may match now (several during a rotation's overlap); default: its `client_secret`. */
  secretHashes?: (clientId: string) => readonly string[] | undefined,
) {
  const compared = new WeakSet<object>();
  async function evenOutFailure(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<void> {
    await next();
    if (ctx.status !== 401 || compared.has(ctx)) return;
    const presented = presentedSecret(ctx);
    if (!presented) return;
    try {
      await verifier.verifyUnknown(presented.secret);
    } catch (error) {
      if (!(error instanceof SecretVerifierBusy)) throw error;
      // The same answer a known client gets when overloaded: no hint about which ids exist.
      ctx.remove('WWW-Authenticate');
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: BUSY_DESCRIPTION };
    }
  }
  return {
    async compare(client: { clientId: string; clientSecret: string; clientAuthMethod: string }, secret: string, ctx: KoaContextWithOIDC | undefined): Promise<boolean> {
      if (ctx) compared.add(ctx);
      const hashes = secretHashes?.(client.clientId) ?? [client.clientSecret];
      const matchesAny = async () => {
        // Every secret of a client ended: spend the work a wrong secret costs.
        if (hashes.length === 0) return verifier.verifyUnknown(secret);
        for (const hash of hashes) if (await verifier.verify(hash, secret)) return true;
        return false;
      };
      const matches = await matchesAny().catch((error: unknown) => {
        if (!(error instanceof SecretVerifierBusy)) throw error;
        ctx?.set('Retry-After', String(RETRY_AFTER_SECONDS));
        const unavailable = new errors.TemporarilyUnavailable(BUSY_DESCRIPTION);
        Object.assign(unavailable, { status: 503, statusCode: 503, expose: true, error_description: BUSY_DESCRIPTION });
        throw unavailable;
      });
      return matches && ctx !== undefined && presentedSecret(ctx)?.method === client.clientAuthMethod;
    },
    // Clients authenticate only at POST endpoints (token, introspection, revocation, PAR, ...).
    middleware: function uniformClientAuthentication(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<unknown> {
      return ctx.method === 'POST' ? evenOutFailure(ctx, next) : next();
    } as Middleware,
  };
}
