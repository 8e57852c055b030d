import { request } from 'undici';
import { it } from 'vitest';
import { DEMO, formBody, startTestApp } from '../../helpers/app.js';
it('probe', async () => {
  const app = await startTestApp({ env: { LOG_LEVEL: 'trace' } });
  const agent = app.agent();
  const basic = `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`;
  const FORM = 'application/x-www-form-urlencoded';
  const cases: any[] = [
    ['{"grant_type": "client_credentials"', { 'content-type': FORM }],
    ['%%%&&&===%zz%', { 'content-type': FORM }],
    [new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3, 0x28]), { 'content-type': FORM }],
    ['grant_type=client_credentials', { 'content-type': `${FORM}; charset=no-such-charset` }],
    ['grant_type=client_credentials', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['grant_type=client_credentials', { 'content-type': 'not a media type' }],
    ['grant_type=client_credentials', { 'content-type': `${FORM}; charset` }],
    ['', { 'content-type': FORM }],
    [formBody({grant_type:'client_credentials', scope: 'no-such-scope'}), { 'content-type': FORM }],
    [formBody({grant_type:'client_credentials', scope: 'orders:read no-such-scope'}), { 'content-type': FORM }],
  ];
  for (const [body, headers] of cases) {
    for (const auth of [{ authorization: basic }, {}]) {
      const r = await request(`${app.issuer}/token`, { method: 'POST', body, headers: { ...headers, ...auth }, dispatcher: agent });
      console.log(JSON.stringify(headers), JSON.stringify(String(body)).slice(0, 50), !!(auth as any).authorization, r.statusCode, (await r.body.text()).slice(0, 200));
    }
  }
  await app.stop();
  console.log(app.logs.slice(-6).join(''));
});
