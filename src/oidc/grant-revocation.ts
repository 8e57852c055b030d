import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { GrantRevocationRequest, Revocation, RevocationReason } from '../revocation/revocation.service.js';
import { currentContext } from './internals.js';

/** What the adapter calls when oidc-provider ends a grant or finds a code or refresh token used twice. */
export interface GrantRevocationHooks {
  /** oidc-provider revokes a grant (`revokeByGrantId` of each token model, once per request and grant). */
  revokeByGrantId(grantId: string): Promise<void>;
  /** A second, concurrent redemption of a code or rotation of a refresh token lost the race. */
  replayed(model: 'AuthorizationCode' | 'RefreshToken', grantId: string): Promise<void>;
}

type Described = Omit<GrantRevocationRequest, 'grantId'>;

interface Entities {
  RefreshToken?: { sid?: string; accountId?: string };
  AuthorizationCode?: { sid?: string; accountId?: string };
  Client?: { clientId: string };
}

/**
 * Why oidc-provider ends a grant, read off the request it serves: RP-initiated logout
 * (`end_session_confirm`: the user), a rotated refresh token presented again or an authorization
 * code presented a second time (`token`: policy, a theft signal), RFC 7009 revocation of the
 * grant's refresh token (`revocation`: the client, for the user).
 */
function describe(ctx: KoaContextWithOIDC | undefined, grantId: string, clientAddress: (ctx: KoaContextWithOIDC) => string | undefined): Described {
  if (!ctx?.oidc) return { reason: 'grant_revoked', initiatingEntity: 'system', actor: 'system' };
  const where = { clientAddress: clientAddress(ctx) ?? null, requestId: (ctx.state as { requestId?: string }).requestId ?? null };
  const entities = ctx.oidc.entities as Entities;
  const client = ctx.oidc.client?.clientId;
  if (ctx.oidc.route === 'end_session_confirm') {
    const session = ctx.oidc.session;
    const accountId = session?.accountId;
    const authorization = Object.entries(session?.authorizations ?? {}).find(([, value]) => value.grantId === grantId);
    return {
      reason: 'logout',
      initiatingEntity: 'user',
      actor: accountId ? `user:${accountId}` : 'anonymous',
      sid: authorization?.[1].sid,
      subject: accountId,
      clientId: authorization?.[0],
      ...where,
    };
  }
  const source = entities.RefreshToken ?? entities.AuthorizationCode;
  const common = { actor: client ? `client:${client}` : 'system', sid: source?.sid, subject: source?.accountId, clientId: client, ...where };
  if (ctx.oidc.route === 'revocation') return { reason: 'token_revocation', initiatingEntity: 'user', ...common };
  if (ctx.oidc.route === 'token') {
    const grantType = ctx.oidc.params?.grant_type;
    const reason: RevocationReason = grantType === 'refresh_token' ? 'refresh_token_reuse' : grantType === 'authorization_code' ? 'code_replay' : 'grant_revoked';
    return { reason, initiatingEntity: 'policy', ...common };
  }
  return { reason: 'grant_revoked', initiatingEntity: 'system', ...common };
}

/**
 * The adapter hooks that route every grant oidc-provider ends through {@link Revocation}: one
 * transaction per grant that ends it, cuts off its JWT access tokens and resume tokens, audits it
 * and records the CAEP event. oidc-provider calls `revokeByGrantId` once per token model, in
 * parallel: one request revokes a grant once.
 */
export function grantRevocationHooks(deps: {
  revocation: Revocation;
  logger: Logger;
  /** The client's address as the audit log records it (TRUST_PROXY aware). */
  clientAddress: (ctx: KoaContextWithOIDC) => string | undefined;
}): GrantRevocationHooks {
  const inFlight = new WeakMap<object, Map<string, Promise<void>>>();
  const outside = new Map<string, Promise<void>>();

  function once(grantId: string, run: (ctx: KoaContextWithOIDC | undefined) => Promise<unknown>): Promise<void> {
    const ctx = currentContext();
    let pending = ctx ? inFlight.get(ctx) : outside;
    if (!pending) inFlight.set(ctx!, (pending = new Map()));
    const existing = pending.get(grantId);
    if (existing) return existing;
    const map = pending;
    const promise = run(ctx).then(
      () => undefined,
      (error: unknown) => {
        deps.logger.error({ err: error }, 'grant revocation failed');
        throw error;
      },
    );
    map.set(grantId, promise);
    if (!ctx) void promise.finally(() => map.delete(grantId)).catch(() => {});
    return promise;
  }

  return {
    revokeByGrantId(grantId) {
      return once(grantId, (ctx) => deps.revocation.revokeGrant({ grantId, ...describe(ctx, grantId, deps.clientAddress) }));
    },
    replayed(model, grantId) {
      return once(grantId, (ctx) => {
        const described = describe(ctx, grantId, deps.clientAddress);
        const reason: RevocationReason = model === 'RefreshToken' ? 'refresh_token_reuse' : 'code_replay';
        return deps.revocation.revokeGrant({ grantId, ...described, reason, initiatingEntity: 'policy' });
      });
    },
  };
}
