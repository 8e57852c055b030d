import type { ParameterizedContext } from 'koa';
import type Provider from 'oidc-provider';
import type { AppState } from '../http/middleware.js';
import type { AuditRecord } from '../iam/audit.repository.js';

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
