import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { recordEvent } from '../events/outbox.repository.js';
import { AppError } from '../http/app-error.js';
import { writeAudit } from '../iam/audit.repository.js';
import type { LoginAttempt, LoginThrottle } from '../iam/login-throttle.repository.js';
import type { PasswordHasher } from '../iam/password-hasher.js';
import { findUserById } from '../iam/user.repository.js';
import { usernameKey } from '../iam/username.js';
import { ACR_PHR, acrSatisfies, isAcr, type Acr } from '../verify/acr.js';
import { ACR_INSUFFICIENT, acrOf, addFactor } from './authentication-context.js';
import { findRecoveryCode, findTotp, insertTotp, replaceRecoveryCodes, useRecoveryCode, useTotpStep } from './factor.repository.js';
import { enrollOtpPage, otpPage, recoveryCodesPage } from './factor-views.js';
import { EXPIRED, type Ctx, type Interaction, type InteractionKit } from './interaction-kit.js';
import { newRecoveryCodes, newTotpSecret, parseRecoveryCode, qrCodeSvg, totpStep, totpUri } from './one-time-codes.js';

/** The one message for a wrong, replayed or malformed code. */
export const CODE_FAILED = 'Incorrect code.';

/** Where the sign-in in progress is kept: in the interaction's stored result, server-side, bound to the browser by oidc-provider's cookie. */
const PENDING = 'custos_pending';

/**
 * A sign-in in progress: who has proven what so far (`amr`) and what the request needs. Kept
 * with the interaction (10 minutes), never in the browser. `enrollSecret` is the TOTP secret of
 * an enrollment not yet confirmed: nothing is stored for the user until a first code confirms it.
 */
interface PendingSignin {
  accountId: string;
  username: string;
  amr: string[];
  required: Acr;
  /** A session asked for more (step-up): no password was asked. */
  stepUp?: boolean;
  enrollSecret?: string;
  /** The authenticator was just enrolled (its codes shown); only "continue" is left. */
  enrolled?: boolean;
}

export interface SecondFactorDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  /** The issuer's host names the account in authenticator apps. */
  issuer: () => string;
}

function retryHint(seconds: number): string {
  return seconds < 90 ? `Too many failed attempts: try again in ${seconds} seconds.` : `Too many failed attempts: try again in ${Math.ceil(seconds / 60)} minutes.`;
}

/** The `acr` the login prompt asks for (the check in authentication-context.ts), if any. */
export function requiredOf(interaction: Interaction): Acr | undefined {
  const required = (interaction.prompt.details as { acr_required?: unknown }).acr_required;
  return isAcr(required) ? required : undefined;
}

function pendingOf(interaction: Interaction): PendingSignin | undefined {
  const pending = (interaction.result as Record<string, unknown> | undefined)?.[PENDING] as PendingSignin | undefined;
  return pending && typeof pending.accountId === 'string' && Array.isArray(pending.amr) && isAcr(pending.required) ? pending : undefined;
}

/**
 * Second factors of the sign-in: one-time codes from an authenticator app (RFC 6238), enrolled
 * with a QR code and confirmed by a first code, and one-time recovery codes. Every code check
 * is reserved against the same brute-force counters as passwords (account and address) before
 * it runs; a TOTP time step and a recovery code are each accepted once (conditional UPDATEs).
 */
export function createSecondFactor(deps: SecondFactorDeps, kit: InteractionKit) {
  /** The sign-in in progress, or a step-up: a session of this account asked only for a stronger `acr`. */
  async function pendingFor(interaction: Interaction): Promise<PendingSignin | undefined> {
    if (interaction.prompt.name !== 'login') return undefined;
    const pending = pendingOf(interaction);
    if (pending) return pending;
    const session = interaction.session as { accountId?: string; amr?: string[] } | undefined;
    const required = requiredOf(interaction);
    if (!session?.accountId || !required || !interaction.prompt.reasons.every((reason) => reason === ACR_INSUFFICIENT)) return undefined;
    const user = await findUserById(deps.db, session.accountId);
    if (!user || user.disabled) return undefined;
    return { accountId: user.id, username: user.username, amr: session.amr ?? ['pwd'], required, stepUp: true };
  }

  async function save(interaction: Interaction, pending: PendingSignin): Promise<void> {
    interaction.result = { [PENDING]: pending } as Interaction['result'];
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  }

  async function complete(ctx: Ctx, interaction: Interaction, pending: PendingSignin, amr: string[]): Promise<void> {
    const clientId = String(interaction.params.client_id);
    await kit.audit(ctx, { actor: `user:${pending.accountId}`, action: 'login.success', target: `user:${pending.accountId}`, outcome: 'success', details: { client_id: clientId, amr } });
    return kit.finish(ctx, interaction, { login: { accountId: pending.accountId, amr, acr: acrOf(amr) } }, false);
  }

  /** The page for what is missing: the code, the enrollment, or the way on after it. */
  async function render(ctx: Ctx, interaction: Interaction, pending: PendingSignin, status = 200, error?: string): Promise<void> {
    const uid = interaction.uid;
    const base = `/interaction/${uid}`;
    const clientId = String(interaction.params.client_id);
    const common = { csrfToken: kit.csrfToken(uid), clientName: await kit.clientName(ctx, interaction), abortAction: `${base}/abort`, ...(error ? { error } : {}) };
    if (pending.enrolled) return kit.send(ctx, status, recoveryCodesPage({ action: `${base}/continue`, csrfToken: common.csrfToken, codes: [] }), clientId);
    if (acrSatisfies(pending.required, ACR_PHR)) {
      // Passkeys are not offered yet: nothing this user can add meets a phishing-resistant requirement.
      return kit.finish(ctx, interaction, { error: 'unmet_authentication_requirements', error_description: 'phishing-resistant authentication (a passkey) is required' }, false);
    }
    if (await findTotp(deps.db, pending.accountId)) {
      return kit.send(ctx, status, otpPage({ ...common, action: `${base}/otp`, recoveryAction: `${base}/recovery`, stepUp: Boolean(pending.stepUp) }), clientId);
    }
    if (!pending.enrollSecret) {
      pending = { ...pending, enrollSecret: newTotpSecret() };
      await save(interaction, pending);
    }
    const secret = pending.enrollSecret!;
    const qrSvg = await qrCodeSvg(totpUri(secret, new URL(deps.issuer()).host, pending.username));
    return kit.send(ctx, status, enrollOtpPage({ ...common, action: `${base}/enroll-otp`, qrSvg, secret }), clientId);
  }

  /**
   * After a correct password: when the request needs more than a password, the password is not
   * counted either way (its reservation is given back) and the browser is sent on to the second
   * step; returns false when the password is enough.
   */
  async function afterPassword(ctx: Ctx, interaction: Interaction, user: { id: string; username: string }, attempt: LoginAttempt): Promise<boolean> {
    const required = requiredOf(interaction);
    if (!required || acrSatisfies(acrOf(['pwd']), required)) return false;
    await deps.throttle.release(attempt);
    await kit.audit(ctx, { actor: `user:${user.id}`, action: 'login.factor', target: `user:${user.id}`, outcome: 'success', details: { factor: 'pwd', client_id: String(interaction.params.client_id) } });
    await save(interaction, { accountId: user.id, username: user.username, amr: ['pwd'], required });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`/interaction/${interaction.uid}`);
    return true;
  }

  /**
   * Runs one code check under the brute-force counters: reserved first (refused while the
   * account or the address is locked), a failure counted as a wrong password is, a success
   * clears the account's counter.
   */
  async function checked(ctx: Ctx, interaction: Interaction, pending: PendingSignin, factor: string, check: () => Promise<'ok' | 'wrong' | 'replayed' | 'busy'>): Promise<boolean> {
    const clientId = String(interaction.params.client_id);
    const target = `user:${pending.accountId}`;
    const attempt = await deps.throttle.reserve(usernameKey(pending.username), kit.address(ctx));
    if (attempt.locked) {
      if (await deps.throttle.firstLockedAttempt(attempt)) {
        await kit.audit(ctx, { actor: 'anonymous', action: 'login.locked', target, outcome: 'denied', details: { factor, client_id: clientId } });
      }
      ctx.set('Retry-After', String(attempt.retryAfterSeconds));
      await render(ctx, interaction, pending, 429, `${CODE_FAILED} ${retryHint(attempt.retryAfterSeconds)}`);
      return false;
    }
    let outcome: Awaited<ReturnType<typeof check>>;
    try {
      outcome = await check();
    } catch (error) {
      await deps.throttle.release(attempt);
      throw error;
    }
    if (outcome === 'busy') {
      await deps.throttle.release(attempt);
      ctx.set('Retry-After', '5');
      await render(ctx, interaction, pending, 429, 'Too many sign-ins at this moment: try again in a few seconds.');
      return false;
    }
    if (outcome === 'ok') {
      await deps.throttle.recordSuccess(attempt);
      return true;
    }
    const failure = deps.throttle.recordFailure(attempt);
    await kit.audit(ctx, { actor: 'anonymous', action: 'login.failure', target, outcome: 'failure', details: { factor, reason: outcome === 'replayed' ? 'replayed_code' : 'wrong_code', client_id: clientId, failures: failure.failures } });
    if (failure.locked.locked) {
      await kit.audit(ctx, { actor: 'system', action: 'login.lock', target, outcome: 'denied', details: { factor, lock_seconds: failure.locked.retryAfterSeconds } });
    }
    if (failure.delayMs > 0) await sleep(failure.delayMs);
    if (failure.locked.locked) {
      ctx.set('Retry-After', String(failure.locked.retryAfterSeconds));
      await render(ctx, interaction, pending, 429, `${CODE_FAILED} ${retryHint(failure.locked.retryAfterSeconds)}`);
    } else {
      await render(ctx, interaction, pending, 400, CODE_FAILED);
    }
    return false;
  }

  async function otp(ctx: Ctx, interaction: Interaction, pending: PendingSignin, form: URLSearchParams): Promise<void> {
    const stored = await findTotp(deps.db, pending.accountId);
    if (!stored) return render(ctx, interaction, pending);
    const code = form.get('code') ?? '';
    const ok = await checked(ctx, interaction, pending, 'otp', async () => {
      const step = totpStep(stored.secret, code);
      if (step === undefined) return 'wrong';
      return (await useTotpStep(deps.db, pending.accountId, step)) ? 'ok' : 'replayed';
    });
    if (ok) return complete(ctx, interaction, pending, addFactor(pending.amr, 'otp'));
  }

  async function recovery(ctx: Ctx, interaction: Interaction, pending: PendingSignin, form: URLSearchParams): Promise<void> {
    const parsed = parseRecoveryCode(form.get('recovery_code') ?? '');
    const ok = await checked(ctx, interaction, pending, 'recovery_code', async () => {
      const hash = parsed ? await findRecoveryCode(deps.db, pending.accountId, parsed.lookup) : undefined;
      // An unknown code is verified against a dummy hash: same work, same time.
      const check = await deps.hasher.verify(hash ?? null, parsed?.normalized ?? '');
      if (check !== 'ok' || !parsed || !hash) return check === 'busy' ? 'busy' : 'wrong';
      return (await useRecoveryCode(deps.db, pending.accountId, parsed.lookup)) ? 'ok' : 'replayed';
    });
    // A recovery code is a one-time password (RFC 8176 `otp`).
    if (ok) {
      await kit.audit(ctx, { actor: `user:${pending.accountId}`, action: 'login.recovery_code', target: `user:${pending.accountId}`, outcome: 'success', details: { client_id: String(interaction.params.client_id) } });
      return complete(ctx, interaction, pending, addFactor(pending.amr, 'otp'));
    }
  }

  /**
   * Confirms an enrollment with its first code: the authenticator (that code's time step
   * already used) and ten recovery codes (argon2id hashes) are stored with their audit record
   * and a CAEP credential-change event (`app`, `create`) in one transaction; the codes are
   * shown once, on this response.
   */
  async function enroll(ctx: Ctx, interaction: Interaction, pending: PendingSignin, form: URLSearchParams): Promise<void> {
    const secret = pending.enrollSecret;
    if (!secret || (await findTotp(deps.db, pending.accountId))) return render(ctx, interaction, pending);
    let step: number | undefined;
    const ok = await checked(ctx, interaction, pending, 'otp_enroll', async () => {
      step = totpStep(secret, form.get('code') ?? '');
      return step === undefined ? 'wrong' : 'ok';
    });
    if (!ok) return;
    const codes = newRecoveryCodes();
    const hashed = await Promise.all(codes.map(async (code) => ({ lookup: parseRecoveryCode(code)!.lookup, hash: await deps.hasher.hash(parseRecoveryCode(code)!.normalized) })));
    const stored = await deps.db.transaction().execute(async (trx) => {
      if (!(await insertTotp(trx, pending.accountId, secret, step!))) return false;
      await replaceRecoveryCodes(trx, pending.accountId, hashed);
      await writeAudit(trx, {
        actor: `user:${pending.accountId}`,
        action: 'user.totp.enroll',
        target: `user:${pending.accountId}`,
        outcome: 'success',
        clientAddress: kit.address(ctx),
        requestId: ctx.state.requestId,
        details: { recovery_codes: codes.length, client_id: String(interaction.params.client_id) },
      });
      await recordEvent(trx, { type: 'credential-changed', userId: pending.accountId, credentialType: 'app', changeType: 'create', initiatingEntity: 'user', actor: `user:${pending.accountId}` });
      return true;
    });
    // A parallel confirmation stored first: this one shows its page (the code form) again.
    if (!stored) return render(ctx, interaction, { ...pending, enrollSecret: undefined });
    const next: PendingSignin = { ...pending, amr: addFactor(pending.amr, 'otp'), enrollSecret: undefined, enrolled: true };
    await save(interaction, next);
    return kit.send(ctx, 200, recoveryCodesPage({ action: `/interaction/${interaction.uid}/continue`, csrfToken: kit.csrfToken(interaction.uid), codes }), String(interaction.params.client_id));
  }

  /** The POSTs of the second step: `otp`, `recovery`, `enroll-otp`, `continue`. */
  async function handle(ctx: Ctx, uid: string, action: string, form: URLSearchParams): Promise<void> {
    const interaction = await kit.load(ctx, uid);
    const pending = await pendingFor(interaction);
    if (!pending) throw new AppError('invalid_request', EXPIRED);
    if (action === 'continue') {
      if (!pending.enrolled) return render(ctx, interaction, pending);
      return complete(ctx, interaction, pending, pending.amr);
    }
    if (pending.enrolled) return render(ctx, interaction, pending);
    if (action === 'otp') return otp(ctx, interaction, pending, form);
    if (action === 'recovery') return recovery(ctx, interaction, pending, form);
    return enroll(ctx, interaction, pending, form);
  }

  return { pendingFor, render, afterPassword, handle };
}
