import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, formBody, startTestApp, type TestApp } from '../../helpers/app.js';
import { clientSecretPostClient, configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';

const POST_CLIENT: [string, string] = ['post-client', 'post-client-secret-Rt5Yu8Io2Pa4'];

let app: TestApp;
let config: TempConfigDir;
beforeAll(async () => {
  config = await configDirWithClients([await clientSecretPostClient(POST_CLIENT)]);
  app = await startTestApp({ configDir: config.dir });
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

const viaPost = ([id, secret]: [string, string]) =>
  postToken({ grant_type: 'client_credentials', client_id: id, client_secret: secret });
const viaBasic = (credentials: [string, string]) => app.token({ grant_type: 'client_credentials' }, { basic: credentials });

async function postToken(form: Record<string, string>) {
  const response = await request(`${app.issuer}/token`, {
    method: 'POST',
    dispatcher: app.agent(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: formBody(form),
  });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

/** argon2 verifications so far, from the Prometheus counter. */
async function verifications(): Promise<number> {
  const response = await request(`${app.issuer}/metrics`, { dispatcher: app.agent() });
  const text = await response.body.text();
  const samples = [...text.matchAll(/^custos_client_secret_verifications_total\{outcome="(?:match|mismatch)"\} (\d+)$/gm)];
  expect(text).toContain('custos_client_secret_verifications_total');
  return samples.reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('client secret authentication (issue 10 #5, #6)', () => {
  it('honours the registered token_endpoint_auth_method strictly', async () => {
    expect((await viaPost(DEMO.reportingJob)).status).toBe(401); // registered for client_secret_basic
    expect((await viaBasic(POST_CLIENT)).status).toBe(401); // registered for client_secret_post
    expect((await viaPost(DEMO.reportingJob)).body.error).toBe('invalid_client');
    expect((await viaBasic(DEMO.reportingJob)).status).toBe(200);
    expect((await viaPost(POST_CLIENT)).status).toBe(200);
  });

  it.each([
    ['an unknown client_id (Basic)', () => viaBasic(['no-such-client', 'some-secret-value-123'])],
    ['an unknown client_id (body)', () => viaPost(['no-such-client', 'some-secret-value-123'])],
    ['a known client with a wrong secret', () => viaBasic([DEMO.reportingJob[0], 'wrong-secret-value-456'])],
    ['a client registered for mutual TLS', () => viaBasic(['orders-api', 'some-secret-value-789'])],
  ])('%s costs exactly one argon2 verification, like a wrong secret', async (_name, attempt) => {
    const before = await verifications();
    const { status, body } = await attempt();
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
    expect((await verifications()) - before).toBe(1);
  });

  it('overload answers 503 temporarily_unavailable with Retry-After, for known and unknown clients, never a 5xx without body or a false 401', async () => {
    // 2 verifications run and 32 wait; a burst of distinct wrong secrets overflows the queue.
    const burst = new Agent({ connections: 128, connect: { ca: app.custos.tls.clientCaPem } });
    try {
      await Promise.all(Array.from({ length: 128 }, () => request(`${app.issuer}/healthz`, { dispatcher: burst }).then((r) => r.body.dump())));
      const answers = await Promise.all(
        Array.from({ length: 128 }, async (_, i) => {
          const id = i % 2 === 0 ? POST_CLIENT[0] : `no-such-client-${i}`;
          const response = await request(`${app.issuer}/token`, {
            method: 'POST',
            dispatcher: burst,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: formBody({ grant_type: 'client_credentials', client_id: id, client_secret: `wrong-secret-${i}` }),
          });
          return { status: response.statusCode, retryAfter: response.headers['retry-after'], body: (await response.body.json()) as Record<string, unknown>, known: i % 2 === 0 };
        }),
      );
      for (const answer of answers) {
        if (answer.status === 401) expect(answer.body.error).toBe('invalid_client');
        else {
          expect(answer).toMatchObject({ status: 503, retryAfter: '5', body: { error: 'temporarily_unavailable' } });
        }
      }
      const busy = answers.filter((answer) => answer.status === 503);
      expect(busy.some((answer) => answer.known)).toBe(true);
      expect(busy.some((answer) => !answer.known)).toBe(true);
    } finally {
      await burst.close();
    }
    // Once the burst is over the right secret works again.
    expect((await viaPost(POST_CLIENT)).status).toBe(200);
  });
});
