import { createHash, randomBytes } from 'node:crypto';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Middleware } from 'koa';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { readBody, type AppState } from '../http/middleware.js';
import { writeAudit } from '../iam/audit.repository.js';
import { findUserById } from '../iam/user.repository.js';
import { completeEnrollmentLink, findOpenEnrollmentLink, findTakenEnrollmentLink, takeEnrollmentLink } from './enrollment-link.repository.js';
import { ENROLL_PATH, ENROLLMENT_TOKEN, enrollmentTokenHash } from './enrollment-link.js';
import { clearRequiredEnrollment } from './factor.repository.js';
import { html, messagePage, page } from './interaction-views.js';
import { constantTimeEqual, createCsrf, sendPage, type Ctx } from './interaction-kit.js';
import { passkeyName, storeNewPasskey } from './passkey-enrollment.js';
import { listPasskeys } from './passkey.repository.js';
import { passkeyForm } from './passkey-views.js';
import type { PasskeyCeremonies } from './passkeys.js';

/** How long a browser that opened a link has to create the passkey (seconds). */
export const ENROLL_WINDOW_SECONDS = 600;
/** The cookie binding a taken link to the browser that took it. */
const BROWSER_COOKIE = 'custos_enroll';
const ROUTE = /^\/enroll(?:\/(start|passkey))?$/;

/** The one message for an unknown, expired, used or foreign link. */
export const LINK_GONE = 'This link has expired, was already used, or is not valid. Ask your administrator for a new one.';

export interface EnrollDeps {
  db: Kysely<Database>;
  passkeys: PasskeyCeremonies;
  cookieKeys: readonly string[];
  maxBodyBytes: number;
  clientAddress: (ctx: Ctx) => string | undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

function startPage(view: { username: string; token: string }): string {
  return page(
    'Set up a passkey',
    html`<h1>Set up a passkey</h1>
<p>Your administrator sent you this link to create a passkey for <strong>${view.username}</strong>. With it you sign in without a password.</p>
<p class="hint">The link works once: continue on the device where you want the passkey (or with your security key at hand).</p>
<form method="post" action="${ENROLL_PATH}/start">
<input type="hidden" name="token" value="${view.token}">
<button type="submit" autofocus>Continue</button>
</form>`,
  );
}

function createPage(view: { username: string; token: string; csrfToken: string; options: unknown; nonce: string; error?: string }): string {
  const fields = html`<input type="hidden" name="token" value="${view.token}">
<label for="passkey-name">Name of this passkey</label>
<input id="passkey-name" type="text" name="name" value="Passkey" maxlength="64" required autofocus aria-describedby="passkey-hint">
<p id="passkey-hint" class="hint">For example the device or the security key it is on.</p>`;
  return page(
    'Create a passkey',
    html`<h1>Create a passkey</h1>
<p class="client">for ${view.username}</p>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<noscript><p class="error">This step needs JavaScript and a browser with passkeys.</p></noscript>
${passkeyForm({ action: `${ENROLL_PATH}/passkey`, csrfToken: view.csrfToken, options: view.options, nonce: view.nonce, label: 'Create a passkey', ceremony: 'register', fields, primary: true })}`,
  );
}

/**
 * `/enroll?token=…`: an administrator's one-time enrollment link. Opening it (GET) changes
 * nothing; "Continue" takes the link for this browser (one conditional UPDATE: of parallel
 * takes exactly one wins; a cookie binds the browser) and shows the passkey creation, which must
 * finish within ten minutes. The passkey, the link's completion, the audit records and the CAEP
 * credential-change event commit in one transaction. The token travels in the query string and
 * form bodies only, never in a logged path.
 */
export function enrollRoutes(deps: EnrollDeps): Middleware<AppState> {
  const csrf = createCsrf(deps.cookieKeys[0]!, 'custos enrollment csrf v1');
  const send = (ctx: Ctx, status: number, body: string, nonce?: string) => sendPage(ctx, status, body, [], nonce);
  const gone = (ctx: Ctx) => send(ctx, 410, messagePage('Link not valid', LINK_GONE));

  return async function enroll(ctx, next) {
    const match = ROUTE.exec(ctx.path);
    if (!match) return next();
    const action = match[1];
    try {
      if (!action) {
        if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
        return await show(ctx);
      }
      if (ctx.method !== 'POST') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
      if (!ctx.is('application/x-www-form-urlencoded')) throw new AppError('invalid_request', 'expected an HTML form post', { status: 415 });
      const form = new URLSearchParams((await readBody(ctx, deps.maxBodyBytes)).toString('utf8'));
      const token = form.get('token') ?? '';
      if (!ENROLLMENT_TOKEN.test(token)) return gone(ctx);
      return action === 'start' ? await start(ctx, token) : await create(ctx, token, form);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) {
        if (error.status === 405) ctx.set('Allow', action ? 'POST' : 'GET, HEAD');
        return send(ctx, error.status, messagePage('Cannot continue', error.message));
      }
      throw error;
    }
  };

  async function show(ctx: Ctx): Promise<void> {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const link = ENROLLMENT_TOKEN.test(token) ? await findOpenEnrollmentLink(deps.db, enrollmentTokenHash(token)) : undefined;
    const user = link && (await findUserById(deps.db, link.userId));
    if (!user || user.disabled) return gone(ctx);
    return send(ctx, 200, startPage({ username: user.username, token }));
  }

  async function creation(ctx: Ctx, token: string, user: { id: string; username: string }, status: number, error?: string): Promise<void> {
    const tokenHash = enrollmentTokenHash(token);
    const nonce = randomBytes(16).toString('base64url');
    const options = await deps.passkeys.registrationOptions(`enroll:${tokenHash}`, user, await listPasskeys(deps.db, user.id));
    return send(ctx, status, createPage({ username: user.username, token, csrfToken: csrf.token(tokenHash), options, nonce, ...(error ? { error } : {}) }), nonce);
  }

  async function start(ctx: Ctx, token: string): Promise<void> {
    const tokenHash = enrollmentTokenHash(token);
    const browser = randomBytes(32).toString('base64url');
    const taken = await takeEnrollmentLink(deps.db, tokenHash, sha256(browser));
    const user = taken && (await findUserById(deps.db, taken.userId));
    if (!user || user.disabled) return gone(ctx);
    await writeAudit(deps.db, {
      actor: `user:${user.id}`,
      action: 'user.enrollment_link.take',
      target: `user:${user.id}`,
      outcome: 'success',
      clientAddress: deps.clientAddress(ctx) ?? null,
      requestId: ctx.state.requestId,
    });
    ctx.append('Set-Cookie', `${BROWSER_COOKIE}=${browser}; Path=${ENROLL_PATH}; Max-Age=${ENROLL_WINDOW_SECONDS}; Secure; HttpOnly; SameSite=Strict`);
    return creation(ctx, token, user, 200);
  }

  async function create(ctx: Ctx, token: string, form: URLSearchParams): Promise<void> {
    const tokenHash = enrollmentTokenHash(token);
    const link = await findTakenEnrollmentLink(deps.db, tokenHash, ENROLL_WINDOW_SECONDS);
    const browser = ctx.cookies.get(BROWSER_COOKIE) ?? '';
    if (!link || !constantTimeEqual(sha256(browser), link.browserHash) || !csrf.valid(tokenHash, form.get('csrf'))) return gone(ctx);
    const user = await findUserById(deps.db, link.userId);
    if (!user || user.disabled) return gone(ctx);
    let response: RegistrationResponseJSON | undefined;
    try {
      response = JSON.parse(form.get('response') ?? '') as RegistrationResponseJSON;
    } catch {
      response = undefined;
    }
    const registered =
      response && typeof response === 'object'
        ? await deps.passkeys.verifyRegistration(`enroll:${tokenHash}`, response).catch((error: unknown) => {
            ctx.state.log.debug({ reason: (error as Error).message }, 'passkey registration refused');
            return undefined;
          })
        : undefined;
    if (!registered) return creation(ctx, token, user, 400, 'The passkey could not be created. Try again.');
    const name = passkeyName(form.get('name'));
    const by = { actor: `user:${user.id}`, clientAddress: deps.clientAddress(ctx) ?? null, requestId: ctx.state.requestId };
    const outcome = await deps.db.transaction().execute(async (trx) => {
      if (!(await completeEnrollmentLink(trx, tokenHash))) return 'gone' as const;
      if (!(await storeNewPasskey(trx, { userId: user.id, registered, name, ...by, details: { via: 'enrollment_link' } }))) throw new AppError('invalid_request', 'That passkey is already registered.', { status: 409 });
      await writeAudit(trx, { ...by, action: 'user.enrollment_link.use', target: `user:${user.id}`, outcome: 'success', details: { factor: 'passkey' } });
      await clearRequiredEnrollment(trx, user.id, ['passkey']);
      return 'stored' as const;
    });
    if (outcome === 'gone') return gone(ctx);
    ctx.append('Set-Cookie', `${BROWSER_COOKIE}=; Path=${ENROLL_PATH}; Max-Age=0; Secure; HttpOnly; SameSite=Strict`);
    return send(ctx, 200, messagePage('Your passkey is ready', `You can now sign in as ${user.username} with the passkey "${name}", without a password.`));
  }
}
