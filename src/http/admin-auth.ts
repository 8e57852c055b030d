import type { TLSSocket } from 'node:tls';
import type { JSONWebKeySet } from 'jose';
import type { Middleware } from 'koa';
import { createAccessTokenVerifier, VerifyError, type AccessTokenClaims, type AccessTokenVerifier } from '../verify/index.js';
import { AppError } from './app-error.js';
import { peerCertificateOf } from './peer-certificate.js';
import type { AppState } from './middleware.js';

/** Audience (RFC 8707 resource) and scope an admin access token must carry. */
export const ADMIN_AUDIENCE = 'urn:custos:admin';
export const ADMIN_SCOPE = 'admin';

/** Who is calling the admin API, for audit records. */
export interface AdminCaller {
  /** `client:<client_id>` (admin tokens are client-credentials tokens). */
  actor: string;
  claims: AccessTokenClaims;
}

export interface AdminAuthState {
  admin: AdminCaller;
}

export interface AdminAuthDeps {
  issuer: string;
  /** This server's current public signing keys (swapped on key reload). */
  publicJwks: () => JSONWebKeySet;
  /** Whether the token was revoked (RFC 7009, or its subject's sessions were revoked). */
  isRevoked: (token: { jti?: string; sub?: string; iat?: number }) => Promise<boolean>;
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

class AdminAuthError extends AppError {
  readonly headers: Record<string, string>;
  constructor(code: string, message: string, status: 401 | 403, challenge: string) {
    super(code, message, { status });
    this.headers = { 'WWW-Authenticate': challenge };
  }
}

/**
 * Admin API authentication (RFC 6750 + RFC 8705): the TLS layer already required a client
 * certificate chaining to the client CA; this requires a bearer access token of this server
 * for audience `urn:custos:admin` with scope `admin`, certificate-bound to that same
 * certificate, not revoked. Checked with `custos/verify` against the server's own current keys
 * (no HTTP round trip). Failures are 401 (403 for a missing scope) with the verifier's stable code.
 */
export function adminAuth(deps: AdminAuthDeps): Middleware<AppState & AdminAuthState> {
  const verifiers = new WeakMap<JSONWebKeySet, AccessTokenVerifier>();
  const verifierFor = (jwks: JSONWebKeySet) => {
    let verifier = verifiers.get(jwks);
    if (!verifier) {
      verifier = createAccessTokenVerifier({ issuer: deps.issuer, audience: ADMIN_AUDIENCE, jwks, requireBinding: true, requiredScopes: [ADMIN_SCOPE] });
      verifiers.set(jwks, verifier);
    }
    return verifier;
  };
  return async function adminAuthMiddleware(ctx, next) {
    const match = BEARER.exec(ctx.get('authorization'));
    if (!match) {
      throw new AdminAuthError('token_required', 'a Bearer access token with scope admin is required', 401, 'Bearer realm="custos-admin"');
    }
    let claims: AccessTokenClaims;
    try {
      claims = await verifierFor(deps.publicJwks()).verify(match[1]!, { clientCertificate: peerCertificateOf(ctx.req.socket as TLSSocket) });
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      ctx.state.log.info({ code: error.code }, 'admin token refused');
      throw new AdminAuthError(error.code, error.description, error.status, error.wwwAuthenticate('custos-admin'));
    }
    if (await deps.isRevoked(claims)) {
      throw new AdminAuthError('token_revoked', 'the access token was revoked', 401, 'Bearer realm="custos-admin", error="invalid_token"');
    }
    ctx.state.admin = { actor: `client:${claims.client_id}`, claims };
    await next();
  };
}
