import type { Kysely } from 'kysely';
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Database } from '../db/database.js';
import { assertCanonicalEs256Signature } from '../verify/es256-signature.js';
import { upsertModel } from '../db/oidc-model.repository.js';
import { descendantsExpireAt, isTokenRevoked, REVOKED_ACCESS_TOKEN_MODEL, type TokenIdentity } from '../revocation/token-revocation.repository.js';

interface IntrospectionCaller {
  clientId: string;
}

/**
 * RFC 7662 introspection and RFC 7009 revocation for this server's own RFC 9068 JWT access
 * tokens, which oidc-provider does not store. Revoked `jti`s are kept (until the token's
 * `exp`) so introspection and token exchange refuse them, and so are tokens exchanged from a
 * revoked token (RFC 8693 chains) and tokens of a subject whose sessions an administrator
 * revoked; resource servers that verify offline see a revocation only through introspection,
 * IAM events or the token's short lifetime.
 */
export interface StructuredTokens {
  introspect(ctx: KoaContextWithOIDC, caller: IntrospectionCaller, token: string): Promise<Record<string, unknown>>;
  /** Returns false when the caller may not revoke this token (it was issued to another client). */
  revoke(caller: IntrospectionCaller, token: string): Promise<boolean>;
  isRevoked(token: TokenIdentity): Promise<boolean>;
}

export function createStructuredTokens(deps: {
  db: Kysely<Database>;
  issuer: string;
  /** This server's current public keys. */
  verificationKeys: () => JWTVerifyGetKey;
  allowedToIntrospect: (ctx: KoaContextWithOIDC, caller: IntrospectionCaller, token: { clientId?: string; aud?: string | string[] }) => Promise<boolean>;
}): StructuredTokens {
  async function verify(token: string): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, deps.verificationKeys(), {
        issuer: deps.issuer,
        algorithms: ['ES256'],
        typ: 'at+jwt',
        requiredClaims: ['exp', 'client_id', 'jti'],
      });
      // jose accepts either ECDSA form; only the low-S one is this server's token.
      assertCanonicalEs256Signature(token);
      return payload;
    } catch {
      return undefined;
    }
  }
  const isRevoked = (token: TokenIdentity) => isTokenRevoked(deps.db, token);
  return {
    isRevoked,
    async introspect(ctx, caller, token) {
      const claims = await verify(token);
      if (!claims || (await isRevoked(claims))) return { active: false };
      const clientId = String(claims.client_id);
      if (!(await deps.allowedToIntrospect(ctx, caller, { clientId, aud: claims.aud }))) return { active: false };
      // RFC 9449 §6.2: a DPoP-bound token (`cnf.jkt`) is introspected as `token_type: DPoP`.
      const cnf = claims.cnf as { jkt?: unknown } | undefined;
      return { ...claims, active: true, token_type: typeof cnf?.jkt === 'string' ? 'DPoP' : 'Bearer' };
    },
    async revoke(caller, token) {
      const claims = await verify(token);
      if (!claims) return true; // RFC 7009 §2.2: an invalid token is not an error
      if (claims.client_id !== caller.clientId) return false;
      // Remembered until the token and everything exchanged from it have expired.
      const until = Math.max(claims.exp!, (await descendantsExpireAt(deps.db, claims.jti!)) ?? 0);
      const ttl = Math.max(1, Math.ceil(until - Date.now() / 1000));
      await upsertModel(deps.db, REVOKED_ACCESS_TOKEN_MODEL, claims.jti!, { jti: claims.jti, clientId: caller.clientId }, ttl);
      return true;
    },
  };
}
