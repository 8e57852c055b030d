import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { recordEvent } from '../events/outbox.repository.js';
import { AppError } from '../http/app-error.js';
import { writeAudit } from '../iam/audit.repository.js';
import type { LoginAttempt, LoginThrottle } from '../iam/login-throttle.repository.js';
import type { PasswordHasher } from '../iam/password-hasher.js';
import { findUserById } from '../iam/user.repository.js';
import { usernameKey } from '../iam/username.js';
import { ACR_MFA, ACR_PHR, ACR_PWD, acrSatisfies, isAcr, strongerAcr, type Acr } from '../verify/acr.js';
import { ACR_INSUFFICIENT, acrOf, addFactor } from './authentication-context.js';
import {
  clearRequiredEnrollment,
  findRecoveryCode,
  findRequiredEnrollment,
  findTotp,
  insertTotp,
  replaceRecoveryCodes,
  useRecoveryCode,
  useTotpStep,
} from './factor.repository.js';
import { enrollOtpPage, otpPage, recoveryCodesPage } from './factor-views.js';
import { EXPIRED, parseWebAuthnJson, type Ctx, type Interaction, type InteractionKit } from './interaction-kit.js';
import { findPasskey, listPasskeys, recordPasskeyUse } from './passkey.repository.js';
import { passkeyName, storeNewPasskey } from './passkey-enrollment.js';
import { enrollPasskeyPage, passkeyForm, passkeyPage } from './passkey-views.js';
import { passkeyAmr, type PasskeyCeremonies } from './passkeys.js';
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
  passkeys: PasskeyCeremonies;
}

/** The one message for a passkey that could not be used (unknown, removed, wrong user, failed check). */
export const PASSKEY_FAILED = 'That passkey could not be used.';

/** `amr` after a passkey with user verification: the key (`hwk`/`swk`), `user`, and `mfa` (the authenticator verified the user too). */
export function withPasskey(amr: readonly string[], backedUp: boolean): string[] {
  const next = addFactor(amr, passkeyAmr(backedUp), ['user']);
  return next.includes('mfa') ? next : [...next, 'mfa'];
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
    // An administrator's "set up at the next sign-in" is met by a sign-in this strong.
    const acr = acrOf(amr);
    await clearRequiredEnrollment(deps.db, pending.accountId, acrSatisfies(acr, ACR_PHR) ? ['otp', 'passkey'] : acrSatisfies(acr, ACR_MFA) ? ['otp'] : []);
    return kit.finish(ctx, interaction, { login: { accountId: pending.accountId, amr, acr: acrOf(amr) } }, false);
  }

  /** The page for what is missing: the code, the enrollment, or the way on after it. */
  async function render(ctx: Ctx, interaction: Interaction, pending: PendingSignin, status = 200, error?: string): Promise<void> {
    const uid = interaction.uid;
    const base = `/interaction/${uid}`;
    const clientId = String(interaction.params.client_id);
    const common = { csrfToken: kit.csrfToken(uid), clientName: await kit.clientName(ctx, interaction), abortAction: `${base}/abort`, ...(error ? { error } : {}) };
    if (pending.enrolled) return kit.send(ctx, status, recoveryCodesPage({ action: `${base}/continue`, csrfToken: common.csrfToken, codes: [] }), clientId);
    const [totp, keys] = await Promise.all([findTotp(deps.db, pending.accountId), listPasskeys(deps.db, pending.accountId)]);
    const phishingResistant = acrSatisfies(pending.required, ACR_PHR);
    const nonce = randomBytes(16).toString('base64url');
    // A passkey meets any requirement: it is the step whenever the user has one (and no app for an mfa request).
    if (keys.length > 0 && (phishingResistant || !totp)) {
      const options = await deps.passkeys.authenticationOptions(uid, keys);
      return kit.send(ctx, status, passkeyPage({ ...common, action: `${base}/passkey`, options, nonce, phishingResistant }), clientId, nonce);
    }
    // A first passkey is created after the strongest factor the user already has: with an
    // authenticator app, the code first (that sign-in ends as mfa, and the step-up comes back here).
    if (phishingResistant && (!totp || pending.amr.includes('otp'))) {
      const options = await deps.passkeys.registrationOptions(uid, { id: pending.accountId, username: pending.username }, keys);
      return kit.send(ctx, status, enrollPasskeyPage({ ...common, action: `${base}/enroll-passkey`, options, nonce }), clientId, nonce);
    }
    if (totp) {
      const passkey =
        keys.length > 0
          ? passkeyForm({ action: `${base}/passkey`, csrfToken: common.csrfToken, options: await deps.passkeys.authenticationOptions(uid, keys), nonce, label: 'Use a passkey instead', ceremony: 'authenticate' })
          : undefined;
      const page = otpPage({ ...common, action: `${base}/otp`, recoveryAction: `${base}/recovery`, stepUp: Boolean(pending.stepUp), ...(passkey ? { passkey } : {}) });
      return kit.send(ctx, status, page, clientId, passkey ? nonce : undefined);
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
    // What the request needs, raised by an administrator's "set up at the next sign-in".
    const flagged = await findRequiredEnrollment(deps.db, user.id);
    const required = strongerAcr(requiredOf(interaction), flagged === 'passkey' ? ACR_PHR : flagged === 'otp' ? ACR_MFA : undefined);
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

  async function passkeyFailed(ctx: Ctx, interaction: Interaction, pending: PendingSignin | undefined, reason: string, userId?: string): Promise<void> {
    // The audit log records attempts on a known account; garbage or an unknown passkey from an
    // anonymous browser leaves nothing durable (only the page's message).
    if (userId) {
      await kit.audit(ctx, {
        actor: 'anonymous',
        action: 'login.failure',
        target: `user:${userId}`,
        outcome: 'failure',
        details: { factor: 'passkey', reason, client_id: String(interaction.params.client_id) },
      });
    }
    if (pending) return render(ctx, interaction, pending, 400, PASSKEY_FAILED);
    return kit.renderLogin(ctx, interaction, 400, { error: PASSKEY_FAILED });
  }

  /**
   * A passkey assertion: as the second step or step-up of `pending` (one of that user's
   * passkeys), or alone from the password page (a discoverable credential names its user).
   * The sign counter moves forward once (conditional UPDATE).
   */
  async function passkey(ctx: Ctx, interaction: Interaction, pending: PendingSignin | undefined, form: URLSearchParams): Promise<void> {
    const response = parseWebAuthnJson<AuthenticationResponseJSON>(form.get('response'));
    const stored = response ? await findPasskey(deps.db, response.id) : undefined;
    if (!response || !stored) return passkeyFailed(ctx, interaction, pending, 'unknown_passkey', pending?.accountId);
    if (pending && stored.userId !== pending.accountId) return passkeyFailed(ctx, interaction, pending, 'other_user', pending.accountId);
    const user = pending ? undefined : await findUserById(deps.db, stored.userId);
    if (!pending && (!user || user.disabled)) return passkeyFailed(ctx, interaction, pending, 'disabled', stored.userId);
    const verified = await deps.passkeys.verifyAuthentication(interaction.uid, response, stored).catch((error: unknown) => {
      ctx.state.log.debug({ reason: (error as Error).message }, 'passkey assertion refused');
      return undefined;
    });
    if (!verified) return passkeyFailed(ctx, interaction, pending, 'invalid_assertion', stored.userId);
    if (!(await recordPasskeyUse(deps.db, stored.credentialId, stored.counter, verified.newCounter, verified.backedUp))) {
      return passkeyFailed(ctx, interaction, pending, 'counter', stored.userId);
    }
    const who: PendingSignin = pending ?? { accountId: user!.id, username: user!.username, amr: [], required: requiredOf(interaction) ?? ACR_PWD };
    return complete(ctx, interaction, who, withPasskey(who.amr, verified.backedUp));
  }

  /**
   * Creates a passkey for `pending` (allowed where the page offered it: a phishing-resistant
   * requirement, and the authenticator app's code first when the user has one). Stored with its
   * audit record and a CAEP credential-change event (`fido2-platform` / `fido2-roaming`,
   * `create`) in one transaction; the sign-in goes on with it.
   */
  async function enrollPasskey(ctx: Ctx, interaction: Interaction, pending: PendingSignin, form: URLSearchParams): Promise<void> {
    const allowed = acrSatisfies(pending.required, ACR_PHR) && (pending.amr.includes('otp') || !(await findTotp(deps.db, pending.accountId)));
    if (!allowed) return render(ctx, interaction, pending);
    const response = parseWebAuthnJson<RegistrationResponseJSON>(form.get('response'));
    const registered = response
      ? await deps.passkeys.verifyRegistration(interaction.uid, response).catch((error: unknown) => {
          ctx.state.log.debug({ reason: (error as Error).message }, 'passkey registration refused');
          return undefined;
        })
      : undefined;
    if (!registered) return passkeyFailed(ctx, interaction, pending, 'invalid_registration', pending.accountId);
    const name = passkeyName(form.get('name'));
    const stored = await deps.db.transaction().execute((trx) =>
      storeNewPasskey(trx, {
        userId: pending.accountId,
        registered,
        name,
        actor: `user:${pending.accountId}`,
        clientAddress: kit.address(ctx),
        requestId: ctx.state.requestId,
        details: { client_id: String(interaction.params.client_id) },
      }),
    );
    if (!stored) return passkeyFailed(ctx, interaction, pending, 'already_registered', pending.accountId);
    return complete(ctx, interaction, pending, withPasskey(pending.amr, registered.backedUp));
  }

  /** The POSTs of the second step: `otp`, `recovery`, `enroll-otp`, `continue`, `passkey`, `enroll-passkey`. */
  async function handle(ctx: Ctx, uid: string, action: string, form: URLSearchParams): Promise<void> {
    const interaction = await kit.load(ctx, uid);
    const pending = await pendingFor(interaction);
    if (action === 'passkey' && interaction.prompt.name === 'login') return passkey(ctx, interaction, pending, form);
    if (!pending) throw new AppError('invalid_request', EXPIRED);
    if (action === 'enroll-passkey') return enrollPasskey(ctx, interaction, pending, form);
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
