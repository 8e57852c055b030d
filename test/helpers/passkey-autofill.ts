/**
 * Passkey autofill (WebAuthn conditional mediation) in page tests. Chromium's virtual
 * authenticator (DevTools WebAuthn domain) answers a conditional request by itself as soon as it
 * holds a matching passkey, without the autofill dropdown a person would pick from: a page test
 * that means to use the password form or the passkey button turns autofill off first.
 * (Scripts run in the page; they are strings because tests are compiled without the DOM types.)
 */
import type { BrowserContext, Page } from 'playwright-core';

/** Pages of `target` behave as a browser without passkey autofill (`isConditionalMediationAvailable()` is false). */
export async function withoutPasskeyAutofill(target: BrowserContext | Page): Promise<void> {
  await target.addInitScript({
    content: 'if (window.PublicKeyCredential) window.PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);',
  });
}

/** Pages of `page` behave as a browser without WebAuthn at all (no `PublicKeyCredential`). */
export async function withoutWebAuthn(page: Page): Promise<void> {
  await page.addInitScript({ content: 'delete window.PublicKeyCredential;' });
}

/**
 * Records the `mediation` of every `navigator.credentials.get` call the pages of `page` make
 * (`'none'` for a modal request), across navigations; the calls themselves go through unchanged.
 */
export async function recordCredentialRequests(page: Page): Promise<string[]> {
  const mediations: string[] = [];
  await page.exposeFunction('__custosRecordCredentialRequest', (mediation: string) => {
    mediations.push(mediation);
  });
  await page.addInitScript({
    content: `(() => {
  const credentials = navigator.credentials;
  if (!credentials) return;
  const get = credentials.get.bind(credentials);
  credentials.get = (options) => {
    window.__custosRecordCredentialRequest(String((options && options.mediation) || 'none'));
    return get(options);
  };
})();`,
  });
  return mediations;
}
