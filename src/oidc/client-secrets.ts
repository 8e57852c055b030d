import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { SecretVerifier } from '../iam/secret-verifier.js';

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
 *   tell which client ids exist.
 */
export function clientSecretAuthentication(verifier: SecretVerifier) {
  const compared = new WeakSet<object>();
  return {
    async compare(client: { clientSecret: string; clientAuthMethod: string }, secret: string, ctx: KoaContextWithOIDC | undefined): Promise<boolean> {
      if (ctx) compared.add(ctx);
      const matches = await verifier.verify(client.clientSecret, secret);
      return matches && ctx !== undefined && presentedSecret(ctx)?.method === client.clientAuthMethod;
    },
    middleware: async function uniformClientAuthentication(ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<void> {
      await next();
      if (ctx.status !== 401 || compared.has(ctx)) return;
      const presented = presentedSecret(ctx);
      if (presented) await verifier.verifyUnknown(presented.secret);
    } as Middleware,
  };
}
