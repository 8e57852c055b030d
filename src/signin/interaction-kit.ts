import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ParameterizedContext } from 'koa';
import type Provider from 'oidc-provider';
import type { AppState } from '../http/middleware.js';
import type { AuditRecord } from '../iam/audit.repository.js';
import { pageHeaders } from './interaction-views.js';

export type Ctx = ParameterizedContext<AppState>;
export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The one message for an expired or foreign interaction. */
export const EXPIRED = 'This sign-in request has expired or is not valid. Go back to the application and start again.';

/** What the interaction routes share with the factor handlers (built in interactions.routes.ts). */
export interface InteractionKit {
  /** The interaction of this browser (signed cookie), which must be the one in the URL. */
  load(ctx: Ctx, uid: string): Promise<Interaction>;
  /** Stores the result and sends the browser back to the authorization endpoint. */
  finish(ctx: Ctx, interaction: Interaction, result: Record<string, unknown>, merge?: boolean): Promise<void>;
  /**
   * Sends a page with the pages' headers (CSP allowing the client's redirect origins as form
   * targets, and the scripts carrying `scriptNonce` when given).
   */
  send(ctx: Ctx, status: number, body: string, clientId?: string, scriptNonce?: string): Promise<void>;
  /** The password page again, with a message. */
  renderLogin(ctx: Ctx, interaction: Interaction, status: number, extra?: { username?: string; error?: string }): Promise<void>;
  audit(ctx: Ctx, record: Omit<AuditRecord, 'clientAddress' | 'requestId'>): Promise<void>;
  csrfToken(uid: string): string;
  clientName(ctx: Ctx, interaction: Interaction): Promise<string>;
  /** The client's address (TRUST_PROXY-aware). */
  address(ctx: Ctx): string | undefined;
}

/** Constant-time equality of two strings (their UTF-8 bytes); a length difference is false without comparing. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * The CSRF tokens of one kind of page: an HMAC of what its forms are bound to (an interaction, a
 * session, an enrollment link) under a key derived from the first cookie key and `purpose`,
 * checked in constant time.
 */
export function createCsrf(cookieKey: string, purpose: string): { token(binding: string): string; valid(binding: string, presented: string | null): boolean } {
  const key = createHmac('sha256', cookieKey).update(purpose).digest();
  const token = (binding: string) => createHmac('sha256', key).update(binding).digest('base64url');
  return { token, valid: (binding, presented) => presented !== null && constantTimeEqual(token(binding), presented) };
}

/** Sends an HTML page with the pages' headers ({@link pageHeaders}: CSP with these form targets, scripts carrying `scriptNonce`). */
export function sendPage(ctx: Ctx, status: number, body: string, formTargets: readonly string[] = [], scriptNonce?: string): void {
  ctx.set(pageHeaders(formTargets, scriptNonce));
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = body;
}

/** A WebAuthn response posted as JSON in a form field (an object with a string `id`), or undefined. */
export function parseWebAuthnJson<T>(value: string | null): T | undefined {
  if (!value || value.length > 64_000) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    return typeof parsed === 'object' && parsed !== null && typeof (parsed as { id?: unknown }).id === 'string' ? (parsed as T) : undefined;
  } catch {
    return undefined;
  }
}
