/**
 * Chromium's virtual WebAuthn authenticators (the DevTools protocol's WebAuthn domain) for page
 * tests of passkeys: a CTAP2 authenticator with resident keys and user verification that answers
 * without a person (automatic presence).
 */
import type { BrowserContext, CDPSession, Page } from 'playwright-core';

/** A DevTools session on `page` with the WebAuthn domain on (no browser UI). */
export async function webAuthnSession(context: BrowserContext, page: Page): Promise<CDPSession> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  return cdp;
}

/** Adds a passkey authenticator (`internal`: a platform one; `usb`: a security key); its id. */
export async function addPasskeyAuthenticator(cdp: CDPSession, transport: 'internal' | 'usb' = 'internal'): Promise<string> {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport, hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return authenticatorId;
}
