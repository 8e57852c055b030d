import type { JSONWebKeySet } from 'jose';
import type { Context } from 'koa';
import type { ClientCertificateState } from '../http/client-certificate.js';
import { AppError } from '../http/app-error.js';
import { createAccessTokenVerifier, VerifyError, type AccessTokenVerifier, type DpopReplayStore } from '../verify/index.js';

/** Audience (RFC 8707 resource) and scope of the tokens SSF receivers call the transmitter with. */
export const SSF_AUDIENCE = 'urn:custos:ssf';
/**
 * CAEP Interoperability Profile 1.0 §2.7.3 "OAuth Scopes": every stream management operation MUST
 * accept `ssf.manage`, every read operation MUST accept `ssf.read`. `ssf:manage` is the name Custos
 * used first; it stays accepted as an alias of `ssf.manage` so existing receivers keep working.
 */
export const SSF_MANAGE_SCOPE = 'ssf.manage';
export const SSF_READ_SCOPE = 'ssf.read';
export const SSF_LEGACY_MANAGE_SCOPE = 'ssf:manage';
/** Which scopes an operation accepts: reads (stream configuration, status, poll) take any of them. */
export const SSF_ACCEPTED_SCOPES = {
  manage: [SSF_MANAGE_SCOPE, SSF_LEGACY_MANAGE_SCOPE],
  read: [SSF_READ_SCOPE, SSF_MANAGE_SCOPE, SSF_LEGACY_MANAGE_SCOPE],
} as const;
export type SsfAccess = keyof typeof SSF_ACCEPTED_SCOPES;

export interface SsfAuthDeps {
  issuer: string;
  /** This server's current public signing keys (swapped on key reload). */
  publicJwks: () => JSONWebKeySet;
  isRevoked: (token: { jti?: string; sub?: string; iat?: number }) => Promise<boolean>;
  /** Where the `jti`s of DPoP proofs sent to the SSF API are remembered (shared by every instance). */
  dpopReplayStore?: DpopReplayStore;
}

/** `Bearer <token>` (RFC 6750) or `DPoP <token>` (RFC 9449 §7.1); scheme names are case-insensitive. */
const AUTHORIZATION = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i;
const CHALLENGE = 'Bearer realm="custos-ssf"';

/**
 * SSF 1.0 §8 authorization (`authorization_schemes`: RFC 6749): a Custos access token for
 * audience `urn:custos:ssf` with a scope the operation accepts ({@link SSF_ACCEPTED_SCOPES};
 * otherwise 403 `insufficient_scope`, RFC 6750 §3.1, as the profile's §2.7.2 asks), verified with `custos/verify` against the
 * server's own keys, not revoked; when it is certificate-bound (`cnf.x5t#S256`, RFC 8705 §3) the
 * request must come with that certificate; when it is DPoP-bound (`cnf.jkt`) it comes as
 * `DPoP <token>` with a proof for this request's method and URL (the configured issuer's origin and
 * the path), each proof once across instances. Returns the receiver: the token's `client_id`.
 */
export function createSsfAuth(deps: SsfAuthDeps): (ctx: Context, access: SsfAccess) => Promise<string> {
  const verifiers = new WeakMap<JSONWebKeySet, AccessTokenVerifier>();
  const verifierFor = (jwks: JSONWebKeySet) => {
    let verifier = verifiers.get(jwks);
    if (!verifier) {
      verifier = createAccessTokenVerifier({
        issuer: deps.issuer,
        audience: SSF_AUDIENCE,
        jwks,
        requireBinding: false,
        dpop: { algorithms: ['ES256', 'EdDSA'], ...(deps.dpopReplayStore ? { replayStore: deps.dpopReplayStore } : {}) },
      });
      verifiers.set(jwks, verifier);
    }
    return verifier;
  };
  const origin = new URL(deps.issuer).origin;
  return async function authenticateReceiver(ctx, access) {
    const accepted: readonly string[] = SSF_ACCEPTED_SCOPES[access];
    const match = AUTHORIZATION.exec(ctx.get('authorization'));
    if (!match) {
      ctx.set('WWW-Authenticate', CHALLENGE);
      throw new AppError('token_required', `a Bearer or DPoP access token with scope ${accepted[0]} is required`, { status: 401 });
    }
    const state = ctx.state as ClientCertificateState;
    const dpop = match[1]!.toLowerCase() === 'dpop' ? { proof: ctx.req.headers.dpop, method: ctx.method, url: new URL(ctx.path, origin) } : undefined;
    let claims;
    try {
      claims = await verifierFor(deps.publicJwks()).verify(match[2]!, { clientCertificate: state.clientCertificate, dpop });
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      const status = error.status === 403 ? 403 : 401;
      if (error.code.startsWith('dpop') || error.code === 'invalid_dpop_proof' || error.code === 'use_dpop_nonce') ctx.set('WWW-Authenticate', error.wwwAuthenticate('custos-ssf'));
      else ctx.set('WWW-Authenticate', status === 403 ? `${CHALLENGE}, error="insufficient_scope", scope="${accepted[0]}"` : `${CHALLENGE}, error="invalid_token"`);
      throw new AppError(error.code, error.message, { status });
    }
    if (!claims.scope.some((scope) => accepted.includes(scope))) {
      ctx.set('WWW-Authenticate', `${CHALLENGE}, error="insufficient_scope", scope="${accepted[0]}"`);
      throw new AppError('insufficient_scope', `this operation needs scope ${accepted.join(' or ')}`, { status: 403 });
    }
    if (await deps.isRevoked(claims)) {
      ctx.set('WWW-Authenticate', `${CHALLENGE}, error="invalid_token"`);
      throw new AppError('token_revoked', 'the access token was revoked', { status: 401 });
    }
    return claims.client_id;
  };
}
