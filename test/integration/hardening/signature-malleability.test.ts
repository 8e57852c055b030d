import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCanonicalEs256Signature } from '../../../src/verify/es256-signature.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { flipS } from '../../helpers/jws.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { tokenEndpoint } from '../../helpers/user-tokens.js';

/**
 * ECDSA signatures are malleable: (R, S) and (R, n − S) both verify. Custos signs low S only and
 * refuses the high-S twin of its tokens at every verification site.
 */
let app: TestApp;
let admin: AdminClient;
beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(() => app?.stop());

const signatureOf = (jwt: string) => Buffer.from(jwt.split('.')[2]!, 'base64url');

function exchange(subjectToken: string) {
  return app.token(
    {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: 'orders-api',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'resume_orders',
      event_payload_hash: eventPayloadHash({ orderId: 'o-1' }),
    },
    { agent: app.clientAgent('orders-api') },
  );
}

describe('high-S ES256 signatures', () => {
  it('every token Custos signs has a low-S signature', async () => {
    for (let i = 0; i < 24; i++) {
      const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
      expect(status).toBe(200);
      expect(isCanonicalEs256Signature(signatureOf(body.access_token))).toBe(true);
    }
  });

  it('introspection: the high-S copy of an active token is active: false', async () => {
    const { body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    const token = body.access_token as string;
    const twin = flipS(token);
    expect(twin).not.toBe(token);
    expect(decodeJwt(twin)).toEqual(decodeJwt(token));
    const original = await tokenEndpoint(app, '/token/introspection', { token }, { basic: DEMO.reportingJob });
    expect(original.body).toMatchObject({ active: true, client_id: 'reporting-job' });
    const copy = await tokenEndpoint(app, '/token/introspection', { token: twin }, { basic: DEMO.reportingJob });
    expect([copy.status, copy.body]).toEqual([200, { active: false }]);
  });

  it('token exchange: the high-S copy of a user token is refused as subject token (invalid_request)', async () => {
    const subject = await mintUserAccessToken(app, { sub: 'alice', scope: 'orders orders:read' });
    const refused = await exchange(flipS(subject));
    expect([refused.status, refused.body.error]).toEqual([400, 'invalid_request']);
    // The original is accepted (also after its twin was tried).
    const accepted = await exchange(subject);
    expect(accepted.status).toBe(200);
    expect(isCanonicalEs256Signature(signatureOf(accepted.body.access_token))).toBe(true);
  });

  it('admin API: the high-S copy of the admin token is 401 invalid_token', async () => {
    expect((await admin.call('GET', '/admin/roles')).status).toBe(200);
    const refused = await admin.call('GET', '/admin/roles', { token: flipS(admin.token) });
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('invalid_token');
    expect(refused.headers['www-authenticate']).toContain('Bearer');
  });
});
