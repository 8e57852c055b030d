import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { eventPayloadHash, verifyEventToken } from '../../../src/verify/index.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

const EVENTS = 'https://events.custos.test/orders';
const AUDIT = 'https://events.custos.test/audit';
let app: TestApp;
let configDir: string;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'custos-config-'));
  await cp(path.resolve(import.meta.dirname, '../../../config'), configDir, { recursive: true });
  const file = path.join(configDir, 'token-exchange.json');
  const config = JSON.parse(await readFile(file, 'utf8'));
  config.token_exchange.policies[0].audiences.push(AUDIT);
  await writeFile(file, JSON.stringify(config));
  app = await startTestApp({ configDir });
});
afterAll(async () => {
  await app?.stop();
  await rm(configDir, { recursive: true, force: true });
});

describe('token exchange for several consumers', () => {
  it('issues one resume token whose aud lists every requested consumer', async () => {
    const payload = { orderId: 'o-2002' };
    const { status, body } = await app.token(
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        client_id: 'orders-api',
        subject_token: await mintUserAccessToken(app),
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        audience: [EVENTS, AUDIT],
        event_payload_hash: eventPayloadHash(payload),
      },
      { agent: app.clientAgent('orders-api') },
    );
    expect(status).toBe(200);
    const claims = decodeJwt(body.access_token);
    expect(claims.aud).toEqual([EVENTS, AUDIT]);
    expect(claims).not.toHaveProperty('custos_audiences');
    const jwks = publicJwks(app.custos.keys());
    for (const audience of [EVENTS, AUDIT]) {
      await expect(verifyEventToken(body.access_token, payload, { issuer: app.issuer, jwks, audience })).resolves.toMatchObject({ sub: 'alice' });
    }
    await expect(
      verifyEventToken(body.access_token, payload, { issuer: app.issuer, jwks, audience: 'https://events.custos.test/other' }),
    ).rejects.toMatchObject({ code: 'wrong_audience' });
  });
});
