import { describe, expect, it } from 'vitest';
import { escapeHtml, html, loginPage, originsOf, pageHeaders } from '../../../src/signin/interaction-views.js';

describe('interaction views', () => {
  it('escapes every interpolated value', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\``)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
    expect(html`<p>${'<script>'}</p>${['<b>', 1]}`.value).toBe('<p>&lt;script&gt;</p>&lt;b&gt;1');
    expect(html`<div>${html`<i>${'<x>'}</i>`}</div>`.value).toBe('<div><i>&lt;x&gt;</i></div>');
  });

  it('renders the login form with hostile values inert', () => {
    const page = loginPage({
      action: '/interaction/abc/login',
      abortAction: '/interaction/abc/abort',
      csrfToken: 'tok"en',
      clientName: '<script>alert(1)</script>',
      username: '"><img src=x onerror=alert(1)>',
      error: 'Incorrect username or password.',
    });
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page).toContain('value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
    expect(page).toContain('name="username"');
    expect(page).toContain('autocomplete="username webauthn"');
    expect(page).toContain('autocomplete="current-password"');
    expect(page).toContain('value="tok&quot;en"');
  });

  it('focuses the username field, or the password field after a failed attempt that kept the username (issue 22 §10)', () => {
    const base = { action: '/a', abortAction: '/b', csrfToken: 't', clientName: 'c' };
    const autofocused = (page: string) => /<input id="(\w+)"[^>]* autofocus>/.exec(page)?.[1];
    expect(autofocused(loginPage(base))).toBe('username');
    expect(autofocused(loginPage({ ...base, username: 'fay', error: 'Incorrect username or password.' }))).toBe('password');
    expect(autofocused(loginPage({ ...base, username: '', error: 'Enter your username and password.' }))).toBe('username');
    expect(loginPage({ ...base, username: 'fay', error: 'x' }).match(/autofocus/g)).toHaveLength(1);
  });

  it('sends a CSP without scripts, framing or foreign form targets', () => {
    const headers = pageHeaders(originsOf(['http://localhost:3000/callback', 'https://app.example/cb', 'not a url']));
    const csp = headers['Content-Security-Policy']!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/script-src|unsafe/);
    expect(csp).toContain("form-action 'self' http://localhost:3000 https://app.example;");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(headers['X-Frame-Options']).toBe('DENY');
    expect(headers['Cache-Control']).toBe('no-store');
  });
});
