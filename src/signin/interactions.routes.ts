import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Middleware } from 'koa';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { readBody, type AppState } from '../http/middleware.js';
import { writeAudit, type AuditRecord } from '../iam/audit.repository.js';
import type { Locked, LoginThrottle } from '../iam/login-throttle.repository.js';
import type { PasswordHasher } from '../iam/password-hasher.js';
import { MAX_PASSWORD_LENGTH } from '../iam/password-policy.js';
import { findLoginCandidate } from '../iam/user.repository.js';
import { usernameKey } from '../iam/username.js';
import { ACR_PWD } from '../verify/acr.js';
import type { ResourceServerConfig } from '../config/files.js';
import { consentItems } from './consent-scopes.js';
import { grantRequested } from '../oidc/first-party.js';
import { consentPage, loginPage, messagePage, originsOf, STYLESHEET, STYLESHEET_PATH } from './interaction-views.js';
import { createCsrf, EXPIRED, sendPage, type Ctx, type InteractionKit } from './interaction-kit.js';
import { passkeyForm } from './passkey-views.js';
import { challengeKeyOf, createPasskeyCeremonies, PASSKEY_SCRIPT, PASSKEY_SCRIPT_PATH, WEBAUTHN_SCRIPT_PATH, webauthnBrowserBundle } from './passkeys.js';
import { createSecondFactor } from './second-factor.js';

/** What the interaction pages need, passed from the composition root. */
export interface InteractionDeps {
  /** The provider currently serving (swapped on key reload). */
  provider: () => Provider;
  db: Kysely<Database>;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  /** Cookie keys: the CSRF key is derived from the first. */
  cookieKeys: readonly string[];
  /** Clients configured `first_party: true` (no consent page). */
  firstParty: (clientId: string) => boolean;
  /** Largest accepted form body, in bytes. */
  maxBodyBytes: number;
  /** The client's address (TRUST_PROXY-aware, src/http/client-address.ts); default: the peer. */
  clientAddress?: (ctx: Ctx) => string | undefined;
  /** Counts an anonymous outcome (a cancel before signing in), which is not audited. */
  anonymousOutcome?: (action: 'login.cancel') => void;
  /** The configured APIs: their scopes are listed under them, with their `scope_descriptions`. */
  resourceServers?: readonly ResourceServerConfig[];
}

/** The one message for an unknown user, a wrong password and a disabled account. */
export const LOGIN_FAILED = 'Incorrect username or password.';

const ROUTE = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|confirm|abort|otp|recovery|enroll-otp|continue|passkey|enroll-passkey))?$/;
const SECOND_STEP = new Set(['otp', 'recovery', 'enroll-otp', 'continue', 'passkey', 'enroll-passkey']);

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

function retryHint(state: Locked): string {
  const minutes = Math.ceil(state.retryAfterSeconds / 60);
  return state.retryAfterSeconds < 90
    ? `Too many failed attempts: try again in ${state.retryAfterSeconds} seconds.`
    : `Too many failed attempts: try again in ${minutes} minutes.`;
}

/**
 * Login, consent and cancel for oidc-provider interactions (`/interaction/:uid`), plus the
 * pages' stylesheet. Forms carry a CSRF token bound to the interaction (HMAC of its uid under a
 * key derived from the cookie keys, compared in constant time); the interaction itself is bound
 * to the browser by oidc-provider's signed `_interaction` cookie.
 */
export function interactionRoutes(deps: InteractionDeps): Middleware<AppState> {
  const addressOf = deps.clientAddress ?? ((ctx: Ctx) => ctx.req.socket.remoteAddress);
  const { token: csrfToken, valid: csrfValid } = createCsrf(deps.cookieKeys[0]!, 'custos interaction csrf v1');

  // One Client.find per request: the page's name and its form targets come from the same lookup.
  type FoundClient = { clientName?: string; redirectUris?: string[] } | undefined;
  const clients = new WeakMap<Ctx, Map<string, Promise<FoundClient>>>();
  function findClient(ctx: Ctx, clientId: string): Promise<FoundClient> {
    let found = clients.get(ctx);
    if (!found) clients.set(ctx, (found = new Map()));
    let client = found.get(clientId);
    if (!client) {
      client = deps.provider().Client.find(clientId).catch(() => undefined) as Promise<FoundClient>;
      found.set(clientId, client);
    }
    return client;
  }

  async function formTargets(ctx: Ctx, clientId: string | undefined): Promise<string[]> {
    if (!clientId) return [];
    const client = await findClient(ctx, clientId);
    return originsOf(client?.redirectUris ?? []);
  }

  async function send(ctx: Ctx, status: number, body: string, clientId?: string, scriptNonce?: string): Promise<void> {
    sendPage(ctx, status, body, await formTargets(ctx, clientId), scriptNonce);
  }

  function audit(ctx: Ctx, record: Omit<AuditRecord, 'clientAddress' | 'requestId'>) {
    return writeAudit(deps.db, { ...record, clientAddress: addressOf(ctx), requestId: ctx.state.requestId });
  }

  async function readForm(ctx: Ctx): Promise<URLSearchParams> {
    if (!ctx.is('application/x-www-form-urlencoded')) throw new AppError('invalid_request', 'expected an HTML form post', { status: 415 });
    return new URLSearchParams((await readBody(ctx, deps.maxBodyBytes)).toString('utf8'));
  }

  /** The interaction of this browser (signed cookie), which must be the one in the URL. */
  async function load(ctx: Ctx, uid: string): Promise<Interaction> {
    let interaction: Interaction;
    try {
      interaction = await deps.provider().interactionDetails(ctx.req, ctx.res);
    } catch (error) {
      ctx.state.log.debug({ reason: (error as { error_description?: string }).error_description ?? (error as Error).message }, 'interaction not found');
      throw new AppError('invalid_request', EXPIRED, { cause: error });
    }
    if (interaction.uid !== uid) throw new AppError('invalid_request', EXPIRED);
    return interaction;
  }

  /**
   * Stores the result on the interaction and sends the browser back to the authorization
   * endpoint: what `provider.interactionResult` does, on the interaction this request already
   * loaded (bound to this browser by `load`) instead of reading it again.
   */
  async function finish(ctx: Ctx, interaction: Interaction, result: Record<string, unknown>, merge = true): Promise<void> {
    interaction.result = (merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result) as Interaction['result'];
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(interaction.returnTo);
  }

  async function clientName(ctx: Ctx, interaction: Interaction): Promise<string> {
    const clientId = String(interaction.params.client_id ?? '');
    const client = await findClient(ctx, clientId);
    return client?.clientName ?? clientId;
  }

  const kit: InteractionKit = { load, finish, send, audit: (ctx, record) => audit(ctx, record), csrfToken, clientName, address: addressOf, renderLogin };
  const passkeys = createPasskeyCeremonies({
    issuer: () => deps.provider().issuer,
    challengeKey: challengeKeyOf(deps.cookieKeys),
  });
  const secondFactor = createSecondFactor({ db: deps.db, hasher: deps.hasher, throttle: deps.throttle, issuer: () => deps.provider().issuer, passkeys }, kit);
  const webauthnBundle = webauthnBrowserBundle();

  async function renderLogin(ctx: Ctx, interaction: Interaction, status: number, extra: { username?: string; error?: string } = {}) {
    const base = `/interaction/${interaction.uid}`;
    // Sign-in with a passkey alone (discoverable credentials), offered where the browser has WebAuthn.
    const nonce = randomBytes(16).toString('base64url');
    const passkey = passkeyForm({
      action: `${base}/passkey`,
      csrfToken: csrfToken(interaction.uid),
      options: await passkeys.authenticationOptions(interaction.uid),
      nonce,
      label: 'Sign in with a passkey',
      ceremony: 'authenticate',
      // …and in the username field's autofill (conditional mediation), where the browser offers it.
      autofill: true,
    });
    await send(
      ctx,
      status,
      loginPage({ action: `${base}/login`, abortAction: `${base}/abort`, csrfToken: csrfToken(interaction.uid), clientName: await clientName(ctx, interaction), passkey, ...extra }),
      String(interaction.params.client_id),
      nonce,
    );
  }

  /** Consent: the requested OpenID scopes and resource scopes become the grant. */
  async function grantConsent(ctx: Ctx, interaction: Interaction): Promise<void> {
    const provider = deps.provider();
    const accountId = interaction.session!.accountId;
    const clientId = String(interaction.params.client_id);
    const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });
    grantRequested(grant, interaction.prompt.details as Record<string, unknown>);
    const grantId = await grant.save();
    await audit(ctx, { actor: `user:${accountId}`, action: 'consent.grant', target: `client:${clientId}`, outcome: 'success', details: { scopes: interaction.prompt.details.missingOIDCScope ?? [] } });
    await finish(ctx, interaction, { consent: { grantId } });
  }

  async function show(ctx: Ctx, uid: string): Promise<void> {
    const interaction = await load(ctx, uid);
    const clientId = String(interaction.params.client_id);
    if (interaction.prompt.name === 'login') {
      // A sign-in in progress (password done) or a step-up is asked only for what is missing.
      const pending = await secondFactor.pendingFor(interaction);
      return pending ? secondFactor.render(ctx, interaction, pending) : renderLogin(ctx, interaction, 200);
    }
    if (interaction.prompt.name === 'consent' && interaction.session) {
      if (deps.firstParty(clientId)) return grantConsent(ctx, interaction);
      const details = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      return send(
        ctx,
        200,
        consentPage({
          action: `/interaction/${uid}/confirm`,
          abortAction: `/interaction/${uid}/abort`,
          csrfToken: csrfToken(uid),
          clientName: await clientName(ctx, interaction),
          ...consentItems(details, deps.resourceServers ?? []),
        }),
        clientId,
      );
    }
    throw new AppError('invalid_request', EXPIRED);
  }

  async function login(ctx: Ctx, uid: string, form: URLSearchParams): Promise<void> {
    const interaction = await load(ctx, uid);
    if (interaction.prompt.name !== 'login') throw new AppError('invalid_request', EXPIRED);
    const clientId = String(interaction.params.client_id);
    const username = usernameKey((form.get('username') ?? '').trim());
    const password = form.get('password') ?? '';
    if (!username || !password) return renderLogin(ctx, interaction, 400, { username, error: 'Enter your username and password.' });

    const shownUsername = username.slice(0, 128);
    const address = addressOf(ctx);
    // The password check is reserved (counted as a failure of the account and the address, in one
    // atomic statement) before argon2 runs, so a burst gets at most the configured number of
    // checks; the account is read at the same time.
    const [reserved, found] = await Promise.allSettled([
      deps.throttle.reserve(username, address),
      username.length <= 128 ? findLoginCandidate(deps.db, username) : undefined,
    ]);
    if (reserved.status === 'rejected') throw reserved.reason;
    const attempt = reserved.value;
    if (found.status === 'rejected') {
      if (!attempt.locked) await deps.throttle.release(attempt);
      throw found.reason;
    }
    const candidate = found.value;
    if (attempt.locked) {
      // Once per locked key and lock period: a flood against a lock adds no audit rows.
      if (await deps.throttle.firstLockedAttempt(attempt)) {
        await audit(ctx, { actor: 'anonymous', action: 'login.locked', outcome: 'denied', details: { username: shownUsername, client_id: clientId } });
      }
      ctx.set('Retry-After', String(attempt.retryAfterSeconds));
      return renderLogin(ctx, interaction, 429, { username: shownUsername, error: `${LOGIN_FAILED} ${retryHint(attempt)}` });
    }

    // An unknown user is verified against a dummy hash: same work, same time.
    let check: Awaited<ReturnType<PasswordHasher['verify']>>;
    try {
      check = await deps.hasher.verify(candidate?.passwordHash ?? null, password.length <= MAX_PASSWORD_LENGTH * 4 ? password : '');
    } catch (error) {
      await deps.throttle.release(attempt);
      throw error;
    }
    if (check === 'busy') {
      // No password was checked: the reservation is given back.
      await deps.throttle.release(attempt);
      ctx.set('Retry-After', '5');
      return renderLogin(ctx, interaction, 429, { username: shownUsername, error: 'Too many sign-ins at this moment: try again in a few seconds.' });
    }
    if (check === 'ok' && candidate && !candidate.disabled) {
      if (await secondFactor.afterPassword(ctx, interaction, candidate, attempt)) return;
      await Promise.all([
        deps.throttle.recordSuccess(attempt),
        audit(ctx, { actor: `user:${candidate.id}`, action: 'login.success', target: `user:${candidate.id}`, outcome: 'success', details: { client_id: clientId } }),
      ]);
      return finish(ctx, interaction, { login: { accountId: candidate.id, amr: ['pwd'], acr: ACR_PWD } });
    }

    const reason = !candidate ? 'unknown_user' : check === 'ok' ? 'disabled' : 'wrong_password';
    const outcome = deps.throttle.recordFailure(attempt);
    const target = candidate ? `user:${candidate.id}` : null;
    await audit(ctx, { actor: 'anonymous', action: 'login.failure', target, outcome: 'failure', details: { username: shownUsername, reason, client_id: clientId, failures: outcome.failures } });
    if (outcome.locked.locked) {
      await audit(ctx, { actor: 'system', action: 'login.lock', target, outcome: 'denied', details: { username: shownUsername, lock_seconds: outcome.locked.retryAfterSeconds } });
    }
    if (outcome.delayMs > 0) await sleep(outcome.delayMs);
    if (outcome.locked.locked) {
      ctx.set('Retry-After', String(outcome.locked.retryAfterSeconds));
      return renderLogin(ctx, interaction, 429, { username: shownUsername, error: `${LOGIN_FAILED} ${retryHint(outcome.locked)}` });
    }
    return renderLogin(ctx, interaction, 400, { username: shownUsername, error: LOGIN_FAILED });
  }

  async function confirm(ctx: Ctx, uid: string): Promise<void> {
    const interaction = await load(ctx, uid);
    if (interaction.prompt.name !== 'consent' || !interaction.session) throw new AppError('invalid_request', EXPIRED);
    return grantConsent(ctx, interaction);
  }

  async function abort(ctx: Ctx, uid: string): Promise<void> {
    const interaction = await load(ctx, uid);
    const accountId = interaction.session?.accountId;
    if (accountId) {
      await audit(ctx, {
        actor: `user:${accountId}`,
        action: interaction.prompt.name === 'consent' ? 'consent.deny' : 'login.cancel',
        target: `client:${String(interaction.params.client_id)}`,
        outcome: 'denied',
      });
    } else {
      // The audit log records acts of a known user, client or administrator: an anonymous cancel
      // is only counted.
      deps.anonymousOutcome?.('login.cancel');
    }
    return finish(ctx, interaction, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  }

  return function interactions(ctx, next) {
    if (ctx.path === STYLESHEET_PATH && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.type = 'text/css';
      ctx.body = STYLESHEET;
      return Promise.resolve();
    }
    if ((ctx.path === WEBAUTHN_SCRIPT_PATH || ctx.path === PASSKEY_SCRIPT_PATH) && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.type = 'application/javascript';
      ctx.body = ctx.path === PASSKEY_SCRIPT_PATH ? PASSKEY_SCRIPT : webauthnBundle;
      return Promise.resolve();
    }
    return ctx.path.startsWith('/interaction/') ? interaction(ctx) : next();
  };

  async function interaction(ctx: Ctx): Promise<void> {
    const match = ROUTE.exec(ctx.path);
    try {
      if (!match) throw new AppError('not_found', 'There is no such page.', { status: 404 });
      const [, uid, action] = match as unknown as [string, string, string | undefined];
      if (!action) {
        if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
        return await show(ctx, uid);
      }
      if (ctx.method !== 'POST') throw new AppError('invalid_request', 'method not allowed', { status: 405 });
      const form = await readForm(ctx);
      if (!csrfValid(uid, form.get('csrf'))) {
        throw new AppError('invalid_request', 'The form has expired or did not come from this site. Go back and try again.', { status: 403 });
      }
      if (action === 'login') return await login(ctx, uid, form);
      if (action === 'confirm') return await confirm(ctx, uid);
      if (SECOND_STEP.has(action)) return await secondFactor.handle(ctx, uid, action, form);
      return await abort(ctx, uid);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) {
        if (error.status === 405) ctx.set('Allow', match?.[2] ? 'POST' : 'GET, HEAD');
        return send(ctx, error.status, messagePage(error.status === 404 ? 'Not found' : 'Cannot continue', error.message));
      }
      throw error;
    }
  }
}
