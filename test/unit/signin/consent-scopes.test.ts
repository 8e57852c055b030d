import { describe, expect, it } from 'vitest';
import { resourceServerSchema } from '../../../src/config/files.js';
import { consentItems } from '../../../src/signin/consent-scopes.js';
import { consentPage } from '../../../src/signin/interaction-views.js';

const ORDERS = 'https://api.custos.test/orders';
const servers = [
  resourceServerSchema.parse({ identifier: ORDERS, scopes: ['orders', 'orders:read'], scope_descriptions: { 'orders:read': 'See your <orders>' } }),
  resourceServerSchema.parse({ identifier: 'https://api.custos.test/other', scopes: ['other'] }),
];

describe('consent items (issue 22 §10)', () => {
  it('lists each scope once: API scopes under their API with their descriptions, never as identity', () => {
    const items = consentItems(
      { missingOIDCScope: ['openid', 'email', 'orders', 'orders:read', 'email', 'custom'], missingResourceScopes: { [ORDERS]: ['orders', 'orders:read', 'orders'] } },
      servers,
    );
    expect(items).toEqual({
      identity: [
        { scope: 'openid', description: 'Know who you are (sign you in)' },
        { scope: 'email', description: 'See your e-mail address' },
        { scope: 'custom', description: 'Use your identity' },
      ],
      resources: [
        {
          resource: ORDERS,
          scopes: [
            { scope: 'orders', description: 'Use this API' },
            { scope: 'orders:read', description: 'See your <orders>' },
          ],
        },
      ],
    });
  });

  it('renders descriptions escaped, API scopes with the scope in brackets', () => {
    const page = consentPage({ action: '/a', abortAction: '/b', csrfToken: 't', clientName: 'c', ...consentItems({ missingOIDCScope: ['openid'], missingResourceScopes: { [ORDERS]: ['orders:read'] } }, servers) });
    expect(page).toContain('<li>Know who you are (sign you in)</li>');
    expect(page).toContain('<li>See your &lt;orders&gt; (<code>orders:read</code>)</li>');
    expect(page).not.toContain('use your identity');
  });

  it('scope_descriptions is optional and may describe only the server\'s own scopes', () => {
    expect(resourceServerSchema.parse({ identifier: ORDERS, scopes: ['orders'] }).scope_descriptions).toEqual({});
    const refused = resourceServerSchema.safeParse({ identifier: ORDERS, scopes: ['orders'], scope_descriptions: { admin: 'Administer' } });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({ path: ['scope_descriptions', 'admin'], message: 'describes a scope that is not in scopes' });
    expect(resourceServerSchema.safeParse({ identifier: ORDERS, scopes: ['orders'], scope_descriptions: { orders: ' ' } }).success).toBe(false);
  });
});
