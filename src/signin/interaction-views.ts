/**
 * Server-rendered pages of the login, consent and logout flows. Every interpolated value is
 * HTML-escaped by {@link html}; only {@link SafeHtml} (built here) is inserted as is. The pages
 * carry no script, except the passkey forms' two served scripts, allowed by a per-response nonce
 * (passkey-views.ts); the Content-Security-Policy forbids every other script.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** Markup that is already safe (produced by {@link html}). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = string | number | SafeHtml | undefined | null | false | readonly Part[];

function render(part: Part): string {
  if (part === undefined || part === null || part === false) return '';
  if (part instanceof SafeHtml) return part.value;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(part);
}

/** Tagged template: literal parts as written, interpolations escaped (arrays joined). */
export function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

/** Path of the one stylesheet the pages load (served by the interaction routes). */
export const STYLESHEET_PATH = '/assets/custos.css';

export const STYLESHEET = `*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;background:#f3f4f6;color:#111827;margin:0}
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.5rem;border:1px solid #9ca3af;border-radius:.25rem;font:inherit}
button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:.25rem;background:#1d4ed8;color:#fff;font:inherit;cursor:pointer}
button.secondary{background:#e5e7eb;color:#111827}.error{background:#fee2e2;color:#991b1b;padding:.5rem .75rem;border-radius:.25rem}
.client{color:#4b5563}ul{padding-left:1.25rem}
.qr svg{display:block;width:12rem;height:12rem;margin:0 auto}.secret{font-family:monospace;font-size:1.05rem;text-align:center;margin-top:0}
ol.codes{font-family:monospace;font-size:1.05rem;white-space:nowrap;padding-left:2.5rem}.hint{color:#4b5563;font-size:.9rem}
h2{font-size:1.1rem;margin:1.5rem 0 .25rem}.notice{background:#dcfce7;color:#166534;padding:.5rem .75rem;border-radius:.25rem}
ul.passkeys{list-style:none;padding:0}li.passkey{border-top:1px solid #e5e7eb;padding:.5rem 0}h3{font-size:1rem;margin:.5rem 0 0}[hidden]{display:none!important}:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
`;

/** A whole page: the shared head (stylesheet, no script) around `body`. */
export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`.value;
}

export interface LoginView {
  action: string;
  abortAction: string;
  csrfToken: string;
  clientName: string;
  username?: string;
  error?: string;
  /** The passkey sign-in (form and scripts, see passkey-views.ts), under the password form. */
  passkey?: SafeHtml;
}

/**
 * The login form: fields `username` and `password` with autocomplete hints, and a cancel button.
 * After a failed attempt that kept the username, the password field has the focus (the one to
 * type again); otherwise the username field.
 */
export function loginPage(view: LoginView): string {
  const focusPassword = Boolean(view.error && view.username);
  return page(
    'Sign in',
    html`<h1>Sign in</h1>
<p class="client">to continue to ${view.clientName}</p>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<form method="post" action="${view.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<label for="username">Username</label>
<input id="username" type="text" name="username" value="${view.username ?? ''}" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" maxlength="128" required${focusPassword ? '' : new SafeHtml(' autofocus')}>
<label for="password">Password</label>
<input id="password" type="password" name="password" autocomplete="current-password" maxlength="256" required${focusPassword ? new SafeHtml(' autofocus') : ''}>
<button type="submit">Sign in</button>
</form>
${view.passkey}
<form method="post" action="${view.abortAction}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit" class="secondary">Cancel</button>
</form>`,
  );
}

export interface ConsentView {
  action: string;
  abortAction: string;
  csrfToken: string;
  clientName: string;
  /** OpenID scopes, each once, in words. */
  identity: Array<{ scope: string; description: string }>;
  /** APIs and their scopes, each once, described by the resource-server config. */
  resources: Array<{ resource: string; scopes: Array<{ scope: string; description: string }> }>;
}

/**
 * Consent for a client that is not first-party: what it asks for (each scope once, in words,
 * with the scope in brackets), allow or deny.
 */
export function consentPage(view: ConsentView): string {
  const item = (entry: { scope: string; description: string }, showScope: boolean) =>
    html`<li>${entry.description}${showScope ? html` (<code>${entry.scope}</code>)` : ''}</li>`;
  return page(
    'Allow access',
    html`<h1>Allow access?</h1>
<p><strong>${view.clientName}</strong> asks to:</p>
${view.identity.length ? html`<ul>
${view.identity.map((entry) => item(entry, false))}
</ul>` : ''}
${view.resources.map(
  (rs) => html`<p class="resource">Call <code>${rs.resource}</code>${rs.scopes.length ? ':' : ''}</p>
${rs.scopes.length ? html`<ul>
${rs.scopes.map((entry) => item(entry, true))}
</ul>` : ''}`,
)}
<form method="post" action="${view.action}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit">Allow</button>
</form>
<form method="post" action="${view.abortAction}">
<input type="hidden" name="csrf" value="${view.csrfToken}">
<button type="submit" class="secondary">Deny</button>
</form>`,
  );
}

/**
 * RP-initiated logout confirmation. `form` is oidc-provider's own hidden form (its action and
 * `xsrf` value, which oidc-provider builds from its own escaped values); the buttons submit it.
 */
export function logoutPage(view: { form: string; clientName?: string }): string {
  return page(
    'Sign out',
    html`<h1>Sign out${view.clientName ? html` of ${view.clientName}` : ''}?</h1>
${new SafeHtml(view.form)}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
  );
}

export function loggedOutPage(view: { clientName?: string }): string {
  return page('Signed out', html`<h1>You are signed out</h1><p>${view.clientName ? `You have signed out of ${view.clientName}.` : 'You have signed out.'}</p>`);
}

export function messagePage(title: string, message: string): string {
  return page(title, html`<h1>${title}</h1><p>${message}</p>`);
}

/**
 * Response headers of every page: a CSP with no script (or only the scripts carrying
 * `scriptNonce`), no framing, forms posting only
 * to us and to `formTargets` (the client's redirect origins: browsers apply `form-action` to
 * the redirects that follow a form post), no caching, no referrer.
 */
export function pageHeaders(formTargets: readonly string[] = [], scriptNonce?: string): Record<string, string> {
  const targets = [...new Set(formTargets)].join(' ');
  // Pages with a passkey button allow exactly their own two script elements (by nonce), nothing else.
  const scripts = scriptNonce ? `; script-src 'nonce-${scriptNonce}'` : '';
  return {
    'Content-Security-Policy': `default-src 'none'; style-src 'self'; img-src 'self'${scripts}; form-action 'self'${targets ? ` ${targets}` : ''}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
  };
}

/** Origins of a list of absolute URIs (for `form-action`); unparsable entries are skipped. */
export function originsOf(uris: readonly string[]): string[] {
  const origins: string[] = [];
  for (const uri of uris) {
    if (!URL.canParse(uri)) continue;
    const { origin } = new URL(uri);
    if (origin !== 'null' && /^[A-Za-z0-9+.:/\[\]-]+$/.test(origin)) origins.push(origin);
  }
  return origins;
}
