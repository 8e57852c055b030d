import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { ClientConfig } from '../config/files.js';
import type { Database } from '../db/database.js';
import { writeAudit } from '../iam/audit.repository.js';
import { loggedOutPage, logoutPage, originsOf, pageHeaders } from '../signin/interaction-views.js';

/**
 * `features.rpInitiatedLogout` (OpenID Connect RP-Initiated Logout 1.0) with our own pages:
 * the confirmation page submits oidc-provider's form (no script); its CSP lets the form's
 * redirect reach only the client's registered post-logout redirect origins.
 */
export function rpInitiatedLogoutFeature() {
  return {
    enabled: true,
    async logoutSource(ctx: KoaContextWithOIDC, form: string) {
      const client = ctx.oidc.client;
      ctx.set(pageHeaders(originsOf(client?.postLogoutRedirectUris ?? [])));
      ctx.type = 'html';
      ctx.body = logoutPage({ form, clientName: client?.clientName ?? client?.clientId });
    },
    async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      const client = ctx.oidc.client;
      ctx.set(pageHeaders());
      ctx.type = 'html';
      ctx.body = loggedOutPage({ clientName: client?.clientName ?? client?.clientId });
    },
  };
}

/**
 * oidc-provider's outgoing `fetch`: its SSRF guard refuses loopback and private addresses. The
 * back-channel logout URIs come from the operator's own config files (no dynamic registration),
 * so requests to exactly those URIs are sent without the guard (a BFF on the same host or
 * network is normal); every other request keeps it.
 */
function trustedUris(clients: readonly ClientConfig[]): Set<string> {
  return new Set(clients.flatMap((client) => (client.backchannel_logout_uri ? [new URL(client.backchannel_logout_uri).href] : [])));
}

export function outboundFetch(clients: readonly ClientConfig[] | (() => readonly ClientConfig[])) {
  const fixed = typeof clients === 'function' ? undefined : trustedUris(clients);
  return (url: URL | string, options: RequestInit & { dispatcher?: unknown }) => {
    // Clients registered by an administrator (src/clients/) are trusted as the config file's are.
    const trusted = fixed ?? trustedUris((clients as () => readonly ClientConfig[])());
    if (trusted.has(String(url))) {
      const { dispatcher: _guard, ...rest } = options;
      return fetch(url, rest);
    }
    return fetch(url, options as RequestInit);
  };
}

/** A stored oidc-provider session, as far as back-channel logout needs it. */
export interface SessionForLogout {
  accountId?: string;
  authorizations?: Record<string, { sid?: string }>;
}

/**
 * Sends OpenID Connect Back-Channel Logout 1.0 logout tokens (signed `logout+jwt`, with `sid`
 * when the client requires it) to every client of `session` that registered a
 * `backchannel_logout_uri`. For callers that end sessions outside `end_session` (the admin API
 * revoking a user's sessions): deleting the session rows is theirs to do. Never throws; returns
 * the clients notified and those that failed.
 */
export async function sendBackchannelLogout(provider: Provider, session: SessionForLogout): Promise<{ notified: string[]; failed: string[] }> {
  const notified: string[] = [];
  const failed: string[] = [];
  if (!session.accountId) return { notified, failed };
  await Promise.all(
    Object.entries(session.authorizations ?? {}).map(async ([clientId, { sid }]) => {
      const client = (await provider.Client.find(clientId).catch(() => undefined)) as
        | { backchannelLogoutUri?: string; backchannelLogout(sub: string, sid?: string): Promise<void> }
        | undefined;
      if (!client?.backchannelLogoutUri) return;
      try {
        await client.backchannelLogout(session.accountId!, sid);
        notified.push(clientId);
      } catch {
        failed.push(clientId);
      }
    }),
  );
  return { notified, failed };
}

/**
 * Audit records for authentication events the provider itself handles: logout (end_session),
 * refresh-token reuse (a rotated refresh token presented again: oidc-provider has revoked the
 * whole grant), and failed back-channel logout deliveries (logged).
 */
export function auditProviderEvents(
  provider: Provider,
  db: Kysely<Database>,
  logger: Logger,
  /** The client's address as the login audit sees it (`clientAddressOf(TRUST_PROXY)`), not the proxy's. */
  clientAddress: (ctx: KoaContextWithOIDC) => string | undefined,
): void {
  const write = (ctx: KoaContextWithOIDC, record: Parameters<typeof writeAudit>[1]) =>
    writeAudit(db, { ...record, clientAddress: clientAddress(ctx) ?? null, requestId: (ctx.state as { requestId?: string }).requestId ?? null }).catch((error) =>
      logger.error({ err: error, action: record.action }, 'audit write failed'),
    );
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    const accountId = ctx.oidc.session?.accountId;
    // A logout without a signed-in user is no act of a known user: not audited (the provider
    // builder counts it in `custos_anonymous_outcomes_total`).
    if (!accountId) return;
    void write(ctx, {
      actor: `user:${accountId}`,
      action: 'logout',
      target: `user:${accountId}`,
      outcome: 'success',
      details: { client_id: ctx.oidc.client?.clientId ?? null },
    });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: { error_detail?: string }) => {
    if (error.error_detail !== 'refresh token already used') return;
    const token = ctx.oidc.entities.RefreshToken;
    void write(ctx, {
      actor: `client:${ctx.oidc.client?.clientId ?? 'unknown'}`,
      action: 'refresh.reuse',
      target: token?.accountId ? `user:${token.accountId}` : null,
      outcome: 'denied',
      details: { grant_revoked: true, client_id: ctx.oidc.client?.clientId ?? null },
    });
  });
  provider.on('backchannel.error', (_ctx: KoaContextWithOIDC, error: Error, client: { clientId: string }) => {
    logger.warn({ clientId: client.clientId, reason: error.message }, 'back-channel logout delivery failed');
  });
}
