import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { StoredPasskey } from './passkey.repository.js';

/** Where the pages load @simplewebauthn/browser (its UMD bundle) and the passkey buttons' script. */
export const WEBAUTHN_SCRIPT_PATH = '/assets/simplewebauthn-browser.js';
export const PASSKEY_SCRIPT_PATH = '/assets/passkey.js';

/** The browser library, served from Custos (no CDN). */
export function webauthnBrowserBundle(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@simplewebauthn/browser');
  // .../browser/script/index.js → .../browser/dist/bundle/index.umd.min.js
  return readFileSync(new URL('../dist/bundle/index.umd.min.js', `file://${entry}`), 'utf8');
}

/**
 * The passkey buttons: each `form[data-passkey]` holds the ceremony's options (a JSON data block)
 * and a hidden `response` field. The button, hidden until the browser is known to support
 * WebAuthn (password sign-in works without it), runs the ceremony and posts the form.
 *
 * A `form[data-autofill]` (the sign-in page's) also starts, on page load, a conditional-mediation
 * request (`navigator.credentials.get({ mediation: 'conditional' })`, through
 * `startAuthentication({ useBrowserAutofill: true })`) when `PublicKeyCredential.
 * isConditionalMediationAvailable()` says yes: the browser lists the user's passkeys in the
 * username field (`autocomplete="username webauthn"`); picking one posts the same form with the
 * same options. The button's ceremony aborts that pending request (one at a time), silently.
 */
export const PASSKEY_SCRIPT = `'use strict';
(function () {
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;
  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    var button = form.querySelector('button[data-passkey-start]');
    var data = document.getElementById(form.getAttribute('data-passkey'));
    var status = form.querySelector('[data-passkey-status]');
    if (!button || !data) return;
    var options = JSON.parse(data.textContent);
    var post = function (response) {
      form.elements.response.value = JSON.stringify(response);
      form.submit();
    };
    button.hidden = false;
    button.addEventListener('click', function () {
      if (form.reportValidity && !form.reportValidity()) return;
      var ceremony = form.getAttribute('data-ceremony') === 'register'
        ? lib.startRegistration({ optionsJSON: options })
        : lib.startAuthentication({ optionsJSON: options });
      ceremony.then(post, function () {
        if (status) status.textContent = 'No passkey was used. Try again, or continue another way.';
      });
    });
    if (form.hasAttribute('data-autofill') && form.getAttribute('data-ceremony') !== 'register') {
      lib.browserSupportsWebAuthnAutofill().then(function (available) {
        if (!available) return;
        return lib.startAuthentication({ optionsJSON: options, useBrowserAutofill: true }).then(post);
      }).catch(function () {
        // Aborted by the button's ceremony, or dismissed: the page works as before.
      });
    }
  });
})();
`;

/** Key of the WebAuthn challenges, derived from the first cookie key. */
export function challengeKeyOf(cookieKeys: readonly string[]): Buffer {
  return createHmac('sha256', cookieKeys[0]!).update('custos webauthn challenge v1').digest();
}

/** RFC 8176 `amr` of a passkey: a synced (backed-up) key is software-secured, a device-bound one hardware-secured. */
export function passkeyAmr(backedUp: boolean): 'swk' | 'hwk' {
  return backedUp ? 'swk' : 'hwk';
}

/** A verified new passkey, ready to store. */
export interface RegisteredPasskey {
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
  attachment: string | null;
}

export interface PasskeyCeremoniesOptions {
  /** The issuer: RP ID is its host name, the expected origin its origin. */
  issuer: () => string;
  /** Key of the challenges (derived from the cookie keys). */
  challengeKey: Buffer;
}

/**
 * WebAuthn ceremonies (Level 3, @simplewebauthn/server): user verification required, discoverable
 * credentials (resident keys), no attestation. The challenge of an interaction is an HMAC of its
 * id, so nothing is stored before the user proves anything, and an assertion is good only for
 * the interaction (bound to one browser) it was made for.
 */
export function createPasskeyCeremonies(options: PasskeyCeremoniesOptions) {
  const relyingParty = () => {
    const url = new URL(options.issuer());
    return { rpID: url.hostname, origin: url.origin };
  };
  const challengeOf = (uid: string) => createHmac('sha256', options.challengeKey).update(`webauthn ${uid}`).digest('base64url');

  return {
    registrationOptions(uid: string, user: { id: string; username: string }, existing: readonly StoredPasskey[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return generateRegistrationOptions({
        rpName: 'Custos',
        rpID: relyingParty().rpID,
        userName: user.username,
        userID: Buffer.from(user.id.replaceAll('-', ''), 'hex'),
        challenge: Buffer.from(challengeOf(uid), 'base64url'),
        attestationType: 'none',
        excludeCredentials: existing.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
        timeout: 120_000,
      });
    },

    async verifyRegistration(uid: string, response: RegistrationResponseJSON): Promise<RegisteredPasskey | undefined> {
      const { rpID, origin } = relyingParty();
      const result = await verifyRegistrationResponse({
        response,
        expectedChallenge: challengeOf(uid),
        expectedOrigin: origin,
        expectedRPID: rpID,
        requireUserVerification: true,
      });
      if (!result.verified) return undefined;
      const { credential, credentialDeviceType, credentialBackedUp } = result.registrationInfo;
      return {
        credentialId: credential.id,
        publicKey: new Uint8Array(credential.publicKey),
        counter: credential.counter,
        transports: credential.transports ?? response.response.transports ?? [],
        deviceType: credentialDeviceType,
        backedUp: credentialBackedUp,
        attachment: response.authenticatorAttachment ?? null,
      };
    },

    authenticationOptions(uid: string, allow: readonly StoredPasskey[] = []): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return generateAuthenticationOptions({
        rpID: relyingParty().rpID,
        challenge: Buffer.from(challengeOf(uid), 'base64url'),
        allowCredentials: allow.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports })),
        userVerification: 'required',
        timeout: 120_000,
      });
    },

    async verifyAuthentication(uid: string, response: AuthenticationResponseJSON, passkey: StoredPasskey): Promise<{ newCounter: number; backedUp: boolean } | undefined> {
      const { rpID, origin } = relyingParty();
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challengeOf(uid),
        expectedOrigin: origin,
        expectedRPID: rpID,
        credential: { id: passkey.credentialId, publicKey: passkey.publicKey as never, counter: passkey.counter, transports: passkey.transports as never },
        requireUserVerification: true,
      });
      return result.verified ? { newCounter: result.authenticationInfo.newCounter, backedUp: result.authenticationInfo.credentialBackedUp } : undefined;
    },
  };
}

export type PasskeyCeremonies = ReturnType<typeof createPasskeyCeremonies>;
