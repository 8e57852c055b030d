import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parameters } from '../../../src/grants/token-exchange/token-exchange.grant.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

let app: TestApp;
let subject: string;
beforeAll(async () => {
  app = await startTestApp();
  subject = await mintUserAccessToken(app);
});
afterAll(async () => {
  await app?.stop();
});

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('token exchange under generated input', () => {
  it('never answers 5xx and always answers 4xx with an OAuth error body', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constantFrom(
        'urn:ietf:params:oauth:token-type:access_token',
        'urn:ietf:params:oauth:token-type:jwt',
        'resume_orders',
        'orders resume_orders',
        'https://events.custos.test/orders',
        eventPayloadHash({ x: 1 }),
        '',
      ),
      fc.constant('__subject__'),
    );
    const field = fc.constantFrom(...parameters, 'client_id');
    const agent = app.clientAgent('orders-api');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(field, value), { maxLength: 10 }), async (pairs) => {
        const form: Record<string, string[]> = { grant_type: [GRANT] };
        for (const [key, raw] of pairs) (form[key] ??= []).push(raw === '__subject__' ? subject : raw);
        const { status, body } = await app.token(form, { agent });
        expect(status).toBeLessThan(500);
        if (status >= 400) expect(typeof body.error).toBe('string');
      }),
      { numRuns: 150 },
    );
  });
});
