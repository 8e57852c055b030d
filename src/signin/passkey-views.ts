import { html, page, SafeHtml } from './interaction-views.js';
import { PASSKEY_SCRIPT_PATH, WEBAUTHN_SCRIPT_PATH } from './passkeys.js';

/** A JSON data block (not executed; `<` escaped so it cannot end the element). */
function jsonBlock(id: string, value: unknown): SafeHtml {
  return new SafeHtml(`<script type="application/json" id="${id}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`);
}

function scripts(nonce: string): SafeHtml {
  return html`<script nonce="${nonce}" src="${WEBAUTHN_SCRIPT_PATH}"></script>
<script nonce="${nonce}" src="${PASSKEY_SCRIPT_PATH}"></script>`;
}

export interface PasskeyFormView {
  action: string;
  csrfToken: string;
  /** The ceremony's options (PublicKeyCredential*OptionsJSON). */
  options: unknown;
  nonce: string;
  label: string;
  ceremony: 'register' | 'authenticate';
  /** Fields before the button (e.g. the passkey's name). */
  fields?: SafeHtml;
  primary?: boolean;
  /**
   * Also offer the user's passkeys in the username field's autofill (WebAuthn conditional
   * mediation), started on page load where the browser supports it; same options, same form.
   */
  autofill?: boolean;
}

/** A passkey form: hidden until the script finds WebAuthn; the button runs the ceremony and posts its result. */
export function passkeyForm(view: PasskeyFormView): SafeHtml {
  return html`<form method="post" action="${view.action}" data-passkey="webauthn-options" data-ceremony="${view.ceremony}"${view.autofill ? new SafeHtml(' data-autofill') : ''}>
<input type="hidden" name="csrf" value="${view.csrfToken}">
<input type="hidden" name="response" value="">
${view.fields}
<button type="button" data-passkey-start hidden${view.primary ? '' : new SafeHtml(' class="secondary"')}>${view.label}</button>
<p class="hint" data-passkey-status role="status"></p>
</form>
${jsonBlock('webauthn-options', view.options)}
${scripts(view.nonce)}`;
}

interface PasskeyPageView {
  action: string;
  abortAction: string;
  csrfToken: string;
  clientName: string;
  options: unknown;
  nonce: string;
  error?: string;
}

function errorLine(error: string | undefined) {
  return error ? html`<p class="error" role="alert">${error}</p>` : '';
}

function cancel(view: PasskeyPageView) {
  return html`<form method="post" action="${view.abortAction}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit" class="secondary">Cancel</button>
</form>`;
}

/** A step that needs a passkey: sign in with one of the user's passkeys. */
export function passkeyPage(view: PasskeyPageView & { phishingResistant: boolean }): string {
  return page(
    'Use your passkey',
    html`<h1>Use your passkey</h1>
<p class="client">${view.clientName} ${view.phishingResistant ? 'asks for a phishing-resistant sign-in.' : 'asks for a second step.'}</p>
${errorLine(view.error)}
<noscript><p class="error">This step needs JavaScript and a browser with passkeys.</p></noscript>
${passkeyForm({ ...view, label: 'Use a passkey', ceremony: 'authenticate', primary: true })}
${cancel(view)}`,
  );
}

/** Creating a passkey: its name, then the browser's own dialog. */
export function enrollPasskeyPage(view: PasskeyPageView): string {
  const fields = html`<label for="passkey-name">Name of this passkey</label>
<input id="passkey-name" type="text" name="name" value="Passkey" maxlength="64" required autofocus aria-describedby="passkey-hint">
<p id="passkey-hint" class="hint">For example the device or the security key it is on.</p>`;
  return page(
    'Create a passkey',
    html`<h1>Create a passkey</h1>
<p class="client">${view.clientName} asks for a phishing-resistant sign-in. Create a passkey on this device or a security key; next time it signs you in without a password.</p>
${errorLine(view.error)}
<noscript><p class="error">This step needs JavaScript and a browser with passkeys.</p></noscript>
${passkeyForm({ ...view, label: 'Create a passkey', ceremony: 'register', fields, primary: true })}
${cancel(view)}`,
  );
}
