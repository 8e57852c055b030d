import { html, page } from './interaction-views.js';
import { passkeyForm } from './passkey-views.js';

/** A passkey as its owner sees it on the self-service page. */
export interface OwnPasskey {
  id: string;
  name: string;
  backedUp: boolean;
  attachment: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

function errorLine(error: string | undefined) {
  return error ? html`<p class="error" role="alert">${error}</p>` : '';
}

const day = (date: Date) => date.toISOString().slice(0, 10);

function describe(passkey: OwnPasskey): string {
  const where = passkey.attachment === 'cross-platform' ? 'Security key' : passkey.backedUp ? 'Synced passkey' : 'This device only';
  return `${where} · added ${day(passkey.createdAt)} · ${passkey.lastUsedAt ? `last used ${day(passkey.lastUsedAt)}` : 'not used yet'}`;
}

export interface PasskeysPageView {
  action: string;
  username: string;
  csrfToken: string;
  nonce: string;
  /** Registration options of a new passkey (excluding the ones listed). */
  options: unknown;
  passkeys: readonly OwnPasskey[];
  /** The last one cannot be removed here (no authenticator app to fall back on). */
  lastFactor: boolean;
  message?: string;
  error?: string;
}

/** The signed-in user's passkeys: rename or remove each, add another with a name. */
export function passkeysPage(view: PasskeysPageView): string {
  const item = (passkey: OwnPasskey) => html`<li class="passkey">
<h3 id="passkey-${passkey.id}">${passkey.name}</h3>
<p class="hint">${describe(passkey)}</p>
<form method="post" action="${view.action}/rename">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<input type="hidden" name="id" value="${passkey.id}">
<label for="name-${passkey.id}">New name</label>
<input id="name-${passkey.id}" type="text" name="name" value="${passkey.name}" maxlength="64" required>
<button type="submit" class="secondary" aria-describedby="passkey-${passkey.id}">Rename</button>
</form>
${view.lastFactor
  ? html`<p class="hint">This is your only passkey and you have no authenticator app: add another before removing it.</p>`
  : html`<form method="post" action="${view.action}/remove">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<input type="hidden" name="id" value="${passkey.id}">
<button type="submit" class="secondary" aria-describedby="passkey-${passkey.id}">Remove</button>
</form>`}
</li>`;
  const fields = html`<label for="passkey-name">Name of the new passkey</label>
<input id="passkey-name" type="text" name="name" value="" maxlength="64" required aria-describedby="passkey-hint">
<p id="passkey-hint" class="hint">For example the device or the security key it is on.</p>`;
  return page(
    'Your passkeys',
    html`<h1>Your passkeys</h1>
<p class="client">Signed in as ${view.username}</p>
${view.message ? html`<p class="notice" role="status">${view.message}</p>` : ''}
${errorLine(view.error)}
${view.passkeys.length
  ? html`<ul class="passkeys">
${view.passkeys.map(item)}
</ul>`
  : html`<p>You have no passkey yet.</p>`}
<h2>Add a passkey</h2>
<noscript><p class="error">Adding a passkey needs JavaScript and a browser with passkeys.</p></noscript>
${passkeyForm({ action: `${view.action}/add`, csrfToken: view.csrfToken, options: view.options, nonce: view.nonce, label: 'Add a passkey', ceremony: 'register', fields, primary: true })}`,
  );
}

/** Before changing passkeys: a recent sign-in as strong as the user's factors, or a passkey now. */
export function confirmPage(view: { action: string; csrfToken: string; nonce: string; options?: unknown; message?: string; error?: string }): string {
  return page(
    'Confirm it is you',
    html`<h1>Confirm it is you</h1>
${view.message ? html`<p class="notice" role="status">${view.message}</p>` : ''}
${errorLine(view.error)}
${view.options
  ? html`<p>To change your passkeys, confirm with one of them.</p>
<noscript><p class="error">This step needs JavaScript and a browser with passkeys.</p></noscript>
${passkeyForm({ action: `${view.action}/confirm`, csrfToken: view.csrfToken, options: view.options, nonce: view.nonce, label: 'Confirm with a passkey', ceremony: 'authenticate', primary: true })}`
  : html`<p>To change your passkeys, sign in again to your application (with your strongest sign-in), then come back here within five minutes.</p>`}`,
  );
}

