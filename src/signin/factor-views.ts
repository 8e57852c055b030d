import { html, page, SafeHtml } from './interaction-views.js';

interface FactorFormView {
  csrfToken: string;
  clientName: string;
  abortAction: string;
  error?: string;
}

function errorLine(error: string | undefined) {
  return error ? html`<p class="error" role="alert">${error}</p>` : '';
}

function cancelForm(view: FactorFormView) {
  return html`<form method="post" action="${view.abortAction}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit" class="secondary">Cancel</button>
</form>`;
}

const CODE_INPUT = new SafeHtml(
  'type="text" inputmode="numeric" autocomplete="one-time-code" autocapitalize="none" spellcheck="false" maxlength="7" required aria-describedby="code-hint"',
);

/**
 * The second step of a sign-in (or a step-up): a code from the authenticator app, or one of the
 * recovery codes instead.
 */
export function otpPage(view: FactorFormView & { action: string; recoveryAction: string; stepUp: boolean; passkey?: SafeHtml }): string {
  return page(
    'Enter your code',
    html`<h1>Enter your code</h1>
<p class="client">${view.stepUp ? html`${view.clientName} asks you to confirm it is you.` : html`to continue to ${view.clientName}`}</p>
${errorLine(view.error)}
<form method="post" action="${view.action}" autocomplete="off">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" ${CODE_INPUT} autofocus>
<p id="code-hint" class="hint">Six digits; a new code appears every 30 seconds.</p>
<button type="submit">Continue</button>
</form>
<h2>Lost your device?</h2>
<form method="post" action="${view.recoveryAction}" autocomplete="off">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<label for="recovery">Recovery code</label>
<input id="recovery" name="recovery_code" type="text" autocapitalize="characters" spellcheck="false" maxlength="24" required aria-describedby="recovery-hint">
<p id="recovery-hint" class="hint">One of the codes you saved when you set up the app. Each works once.</p>
<button type="submit" class="secondary">Use recovery code</button>
</form>
${view.passkey}
${cancelForm(view)}`,
  );
}

/**
 * Setting up an authenticator app: the QR code (server-side SVG), the same secret as text for
 * typing in, and the first code that confirms it.
 */
export function enrollOtpPage(view: FactorFormView & { action: string; qrSvg: string; secret: string }): string {
  const grouped = view.secret.match(/.{1,4}/g)!.join(' ');
  return page(
    'Set up two-step sign-in',
    html`<h1>Set up two-step sign-in</h1>
<p class="client">${view.clientName} needs a second step when you sign in.</p>
${errorLine(view.error)}
<ol>
<li>Scan this QR code with an authenticator app.</li>
<li>Enter the six-digit code the app shows.</li>
</ol>
<div class="qr" role="img" aria-label="QR code of your authenticator key">${new SafeHtml(view.qrSvg)}</div>
<p class="hint">Cannot scan it? Enter this key in the app instead:</p>
<p class="secret">${grouped}</p>
<form method="post" action="${view.action}" autocomplete="off">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" ${CODE_INPUT} autofocus>
<p id="code-hint" class="hint">Six digits; a new code appears every 30 seconds.</p>
<button type="submit">Confirm</button>
</form>
${cancelForm(view)}`,
  );
}

/** The recovery codes, shown once right after the enrollment, and the way on. */
export function recoveryCodesPage(view: { action: string; csrfToken: string; codes: readonly string[] }): string {
  return page(
    'Save your recovery codes',
    html`<h1>Save your recovery codes</h1>
${view.codes.length
  ? html`<p>Your authenticator app is set up. If you lose it, each of these codes signs you in once. Keep them somewhere safe: they are not shown again.</p>
<ol class="codes">
${view.codes.map((code) => html`<li>${code}</li>`)}
</ol>`
  : html`<p>Your authenticator app is set up. Your recovery codes were shown once, right after you set it up.</p>`}
<form method="post" action="${view.action}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit" autofocus>I saved them, continue</button>
</form>`,
  );
}
