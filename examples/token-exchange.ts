/**
 * Runnable walk-through of the RFC 8693 resume-token flow (README "Token exchange for events"):
 *
 *   npx tsx examples/token-exchange.ts
 *
 * It starts Custos in-process with the demo config (embedded PostgreSQL under .data/example,
 * or DATABASE_URL), then plays the three parties over real HTTPS:
 *   1. a user's access token for the orders API (minted through the provider's own models,
 *      standing in for the login + authorization code flow of the web BFF);
 *   2. orders-api, authenticated by mTLS, exchanges it for a resume token bound to one event;
 *   3. a consumer verifies the token together with the event payload; an edited payload fails.
 */
import { Agent, fetch as undiciFetch, request } from 'undici';
import { describeError } from '../src/cli/describe-error.js';
import { startCustos } from '../src/main.js';
import { createEventTokenVerifier, eventPayloadHash, VerifyError } from '../src/verify/index.js';

const ORDERS = 'https://api.custos.test/orders';
const EVENTS = 'https://events.custos.test/orders';

const custos = await startCustos({
  env: {
    ...process.env,
    PORT: process.env.PORT ?? '0',
    ADMIN_PORT: process.env.ADMIN_PORT ?? '0',
    DATA_DIR: process.env.DATA_DIR ?? '.data/example',
    EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54339',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  },
}).catch((error: unknown) => {
  // A start-up failure (the embedded PostgreSQL's port taken, say) is one line, not a stack.
  console.error(`custos: ${describeError(error)}`);
  process.exit(1);
});
const step = (title: string, value: unknown) => console.log(`\n== ${title}\n${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}`);

try {
  // 1. The user's short-lived access token, as the BFF would hold it after login.
  const provider = custos.provider();
  const webBff = await provider.Client.find('web-bff');
  const userToken = new provider.AccessToken({ accountId: 'alice', client: webBff!, scope: 'orders', gty: 'authorization_code', grantId: 'example' } as never);
  userToken.resourceServer = new provider.ResourceServer(ORDERS, {
    scope: 'orders orders:read',
    audience: ORDERS,
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256', kid: custos.keys().current.kid } },
  });
  const subjectToken = await userToken.save();
  step('1. user access token (sub alice, scope orders, aud orders API)', `${subjectToken.slice(0, 60)}...`);

  // 2. orders-api publishes an event: it exchanges the user's token for a resume token.
  const event = { type: 'order.placed', orderId: 'o-1001', amount: 4200, currency: 'EUR' };
  const hash = eventPayloadHash(event);
  const ordersApi = custos.devPki!.clients['orders-api']!;
  const mtls = new Agent({ connect: { ca: custos.tls.clientCaPem, cert: ordersApi.certPem, key: ordersApi.keyPem } });
  const response = await request(`${custos.issuer}/token`, {
    method: 'POST',
    dispatcher: mtls,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: 'orders-api',
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'resume_orders',
      audience: EVENTS,
      event_payload_hash: hash,
    }).toString(),
  });
  const exchanged = (await response.body.json()) as { access_token: string; [key: string]: unknown };
  step(`2. token exchange response (HTTP ${response.statusCode})`, { ...exchanged, access_token: `${exchanged.access_token.slice(0, 60)}...` });
  await mtls.close();

  // 3. The consumer (billing-worker) receives { token, payload } from the broker and verifies both.
  const trustDevCa = new Agent({ connect: { ca: custos.tls.clientCaPem } });
  const verifier = createEventTokenVerifier({
    issuer: custos.issuer,
    jwksUri: `${custos.issuer}/jwks`,
    fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch,
  });
  const claims = await verifier.verifyEventToken(exchanged.access_token, event, { audience: EVENTS, requiredScope: 'resume_orders' });
  step('3. consumer verified the event token', { sub: claims.sub, act: claims.act, scope: claims.scope, event_payload_hash: claims.event_payload_hash, exp: new Date(claims.exp * 1000).toISOString() });

  try {
    await verifier.verifyEventToken(exchanged.access_token, { ...event, amount: 1 }, { audience: EVENTS });
    throw new Error('an edited payload was accepted');
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    step('   ...and the same token with an edited payload is refused', error.code);
  }
  await trustDevCa.close();
} finally {
  await custos.stop();
}
