import { randomBytes } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Context, Middleware } from 'koa';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { readBody, type AppState } from '../http/middleware.js';
import { writeAudit } from '../iam/audit.repository.js';
import { findUserById } from '../iam/user.repository.js';
import { ACR_MFA, ACR_PHR, ACR_PWD, acrSatisfies, type Acr } from '../verify/acr.js';
import { confirmPage, passkeysPage } from './account-views.js';
import { acrOf } from './authentication-context.js';
import type { AuthenticatorService } from './authenticator.service.js';
import { findTotp } from './factor.repository.js';
import { messagePage } from './interaction-views.js';
import { createCsrf, parseWebAuthnJson, sendPage, type Ctx } from './interaction-kit.js';
import { passkeyName, storeNewPasskey } from './passkey-enrollment.js';
import { findPasskey, listPasskeys, listPasskeySummaries, recordPasskeyUse } from './passkey.repository.js';
import type { PasskeyCeremonies } from './passkeys.js';
import { PASSKEY_FAILED, withPasskey } from './second-factor.js';

/** The self-service page of a signed-in user's passkeys. */
export const ACCOUNT_PASSKEYS_PATH = '/account/passkeys';

/** How recent the sign-in must be to change passkeys (seconds). */
export const ACCOUNT_FRESH_SECONDS = 300;

const ROUTE = /^\/account\/passkeys(?:\/(add|rename|remove|confirm))?$/;
const PASSKEY_ID = /^[1-9][0-9]{0,17}$/;
const DONE: Record<string, string> = { added: 'Passkey added.', renamed: 'Passkey renamed.', removed: 'Passkey removed.' };

export interface AccountDeps {
  provider: () => Provider;
  db: Kysely<Database>;
  passkeys: PasskeyCeremonies;
  authenticators: AuthenticatorService;
  cookieKeys: readonly string[];
  maxBodyBytes: number;
  clientAddress: (ctx: Ctx) => string | undefined;
}

/**
 * What changing passkeys needs: the `acr` of the strongest factor the user has (a passkey → phr,
 * an authenticator app → mfa, else a password), so a phished password cannot add the
 * attacker's passkey to an account that has a stronger factor.
 */
export function accountAcr(hasPasskey: boolean, hasTotp: boolean): Acr {
  return hasPasskey ? ACR_PHR : hasTotp ? ACR_MFA : ACR_PWD;
}

/**
 * `/account/passkeys`: the user of the oidc-provider session (its signed cookie) lists, adds,
 * renames and removes their passkeys. Changes need a sign-in of the last five minutes as strong
 * as the user's strongest factor ({@link accountAcr}); otherwise the page asks to confirm with a
 * passkey (which refreshes the session) or to sign in again. Forms carry a CSRF token bound to
 * the session (HMAC of its id, compared in constant time); the session cookie is SameSite=Lax.
 */
export function accountRoutes(deps: AccountDeps): Middleware<AppState> {
  const { token: csrfToken, valid: csrfValid } = createCsrf(deps.cookieKeys[0]!, 'custos account csrf v1');
  const send = (ctx: Ctx, status: number, body: string, nonce?: string) => sendPage(ctx, status, body, [], nonce);

  function seeOther(ctx: Ctx, done: string) {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PASSKEYS_PATH}?done=${done}`);
  }

  return async function account(ctx, next) {
    const match = ROUTE.exec(ctx.path);
    if (!match) return next();
    const action = match[1];
    try {
      if (!action && ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
      if (action && ctx.method !== 'POST') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
      await handle(ctx, action);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) {
        if (error.status === 405) ctx.set('Allow', action ? 'POST' : 'GET, HEAD');
        return send(ctx, error.status, messagePage('Cannot continue', error.message));
      }
      throw error;
    }
  };

  async function handle(ctx: Ctx, action: string | undefined): Promise<void> {
    const session = await deps.provider().Session.get(ctx as unknown as Context);
    const user = session.accountId ? await findUserById(deps.db, session.accountId) : undefined;
    if (!user || user.disabled) {
      return send(ctx, 401, messagePage('Sign in first', 'You are not signed in. Sign in to one of your applications, then open this page again.'));
    }
    const userId = user.id;
    const csrf = csrfToken(session.jti);
    const challengeId = `account:${session.jti}`;
    const by = { actor: `user:${userId}`, initiatingEntity: 'user' as const, clientAddress: deps.clientAddress(ctx) ?? null, requestId: ctx.state.requestId };
    const [passkeys, totp] = await Promise.all([listPasskeys(deps.db, userId), findTotp(deps.db, userId)]);
    const fresh = !session.past(ACCOUNT_FRESH_SECONDS) && acrSatisfies(session.acr, accountAcr(passkeys.length > 0, Boolean(totp)));
    const nonce = randomBytes(16).toString('base64url');

    async function showConfirm(status: number, extra: { message?: string; error?: string } = {}) {
      const options = passkeys.length > 0 ? await deps.passkeys.authenticationOptions(challengeId, passkeys) : undefined;
      return send(ctx, status, confirmPage({ action: ACCOUNT_PASSKEYS_PATH, csrfToken: csrf, nonce, ...(options ? { options } : {}), ...extra }), options ? nonce : undefined);
    }

    async function showPasskeys(status: number, extra: { message?: string; error?: string } = {}) {
      const [listed, stored] = await Promise.all([listPasskeySummaries(deps.db, userId), listPasskeys(deps.db, userId)]);
      const options = await deps.passkeys.registrationOptions(challengeId, { id: userId, username: user!.username }, stored);
      const view = { action: ACCOUNT_PASSKEYS_PATH, username: user!.username, csrfToken: csrf, nonce, options, passkeys: listed, lastFactor: listed.length === 1 && !totp, ...extra };
      return send(ctx, status, passkeysPage(view), nonce);
    }

    if (!action) {
      // After a first passkey is added, the page asks for it at once (the user's factors are stronger now).
      const done = typeof ctx.query.done === 'string' ? DONE[ctx.query.done] : undefined;
      return fresh ? showPasskeys(200, done ? { message: done } : {}) : showConfirm(200, done ? { message: done } : {});
    }

    if (!ctx.is('application/x-www-form-urlencoded')) throw new AppError('invalid_request', 'expected an HTML form post', { status: 415 });
    const form = new URLSearchParams((await readBody(ctx, deps.maxBodyBytes)).toString('utf8'));
    if (!csrfValid(session.jti, form.get('csrf'))) {
      throw new AppError('invalid_request', 'The form has expired or did not come from this site. Go back and try again.', { status: 403 });
    }

    if (action === 'confirm') {
      // A passkey of this user, now: the session counts as a fresh phishing-resistant sign-in.
      const response = parseWebAuthnJson<AuthenticationResponseJSON>(form.get('response'));
      const stored = response ? await findPasskey(deps.db, response.id) : undefined;
      const verified =
        response && stored && stored.userId === userId
          ? await deps.passkeys.verifyAuthentication(challengeId, response, stored).catch((error: unknown) => {
              ctx.state.log.debug({ reason: (error as Error).message }, 'passkey assertion refused');
              return undefined;
            })
          : undefined;
      if (!verified || !(await recordPasskeyUse(deps.db, stored!.credentialId, stored!.counter, verified.newCounter, verified.backedUp))) {
        await writeAudit(deps.db, { ...by, action: 'account.confirm', target: `user:${userId}`, outcome: 'failure', details: { factor: 'passkey' } });
        return showConfirm(400, { error: PASSKEY_FAILED });
      }
      const amr = withPasskey(session.amr ?? [], verified.backedUp);
      session.loginAccount({ accountId: userId, amr, acr: acrOf(amr) });
      await session.persist();
      await writeAudit(deps.db, { ...by, action: 'account.confirm', target: `user:${userId}`, outcome: 'success', details: { factor: 'passkey', amr } });
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 303;
      ctx.redirect(ACCOUNT_PASSKEYS_PATH);
      return;
    }

    if (!fresh) return showConfirm(403);

    if (action === 'add') {
      const response = parseWebAuthnJson<RegistrationResponseJSON>(form.get('response'));
      const registered = response
        ? await deps.passkeys.verifyRegistration(challengeId, response).catch((error: unknown) => {
            ctx.state.log.debug({ reason: (error as Error).message }, 'passkey registration refused');
            return undefined;
          })
        : undefined;
      if (!registered) return showPasskeys(400, { error: 'The passkey could not be added. Try again.' });
      const name = passkeyName(form.get('name'));
      const stored = await deps.db.transaction().execute((trx) => storeNewPasskey(trx, { userId, registered, name, actor: by.actor, clientAddress: by.clientAddress, requestId: by.requestId, details: { via: 'account' } }));
      if (!stored) return showPasskeys(409, { error: 'That passkey is already registered.' });
      return seeOther(ctx, 'added');
    }

    const id = form.get('id') ?? '';
    if (!PASSKEY_ID.test(id)) return showPasskeys(400, { error: 'No such passkey.' });
    if (action === 'rename') {
      const name = (form.get('name') ?? '').trim().slice(0, 64);
      if (!name) return showPasskeys(400, { error: 'Enter a name.' });
      if (!(await deps.authenticators.renameOwnPasskey(by, userId, id, name))) return showPasskeys(404, { error: 'No such passkey.' });
      return seeOther(ctx, 'renamed');
    }
    const removed = await deps.authenticators.removeOwnPasskey(by, userId, id);
    if (removed === 'not_found') return showPasskeys(404, { error: 'No such passkey.' });
    if (removed === 'last_factor') return showPasskeys(409, { error: 'This is your only passkey and you have no authenticator app: add another before removing it.' });
    return seeOther(ctx, 'removed');
  }
}
