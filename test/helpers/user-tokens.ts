import { request } from 'undici';
import { eventPayloadHash } from '../../src/verify/index.js';
import { DEMO, formBody, type TestApp } from './app.js';
import { mintUserAccessToken } from './tokens.js';

/** POST to introspection/revocation, authenticated as a demo client (mTLS or Basic). */
export async function tokenEndpoint(
  app: TestApp,
  path: '/token/introspection' | '/token/revocation',
  form: Record<string, string>,
  auth: { basic?: [string, string]; client?: string },
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth.basic) headers.authorization = `Basic ${Buffer.from(auth.basic.join(':')).toString('base64')}`;
  const response = await request(`${app.issuer}${path}`, {
    method: 'POST',
    headers,
    body: formBody(auth.client ? { client_id: auth.client, ...form } : form),
    dispatcher: auth.client ? app.clientAgent(auth.client) : app.agent(),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
}

/** RFC 8693 exchange by a demo mTLS client (orders-api for user tokens, billing-worker for chained). */
export function exchange(app: TestApp, client: 'orders-api' | 'billing-worker', subjectToken: string, payload: unknown = { order: 1 }) {
  return app.token(
    {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: client,
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'resume_orders',
      audience: DEMO.eventsResource,
      event_payload_hash: eventPayloadHash(payload),
    },
    { agent: app.clientAgent(client) },
  );
}

/** Whether a token introspects active, asked by a client allowed to introspect it. */
export async function isActive(app: TestApp, token: string, auth: { basic?: [string, string]; client?: string }): Promise<boolean> {
  const { status, body } = await tokenEndpoint(app, '/token/introspection', { token }, auth);
  if (status !== 200) throw new Error(`introspection: ${status} ${JSON.stringify(body)}`);
  return body.active === true;
}

/** What a logged-in user holds, built through oidc-provider's own models (as the code flow would). */
export interface UserHoldings {
  sessionUid: string;
  grantId: string;
  refreshToken: string;
  opaqueAccessToken: string;
  accessToken: string;
  resumeToken: string;
  chainedResumeToken: string;
}

/**
 * A web-bff session of `userId` with its grant, a refresh token and an opaque access token (stored),
 * a JWT access token for the orders API, a resume token orders-api exchanged from it and one
 * billing-worker exchanged from that (chained).
 */
export async function holdingsOf(app: TestApp, userId: string): Promise<UserHoldings> {
  const provider = app.custos.provider();
  const client = (await provider.Client.find('web-bff'))!;
  const grant = new provider.Grant({ accountId: userId, clientId: 'web-bff' });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(DEMO.ordersResource, 'orders orders:read');
  const grantId = await grant.save();
  const session = new provider.Session();
  session.loginAccount({ accountId: userId, loginTs: Math.floor(Date.now() / 1000) });
  session.sidFor('web-bff', `sid-${userId.slice(0, 8)}`);
  session.grantIdFor('web-bff', grantId);
  await (session.save as unknown as (ttl: number) => Promise<string>).call(session, 3600);
  const refresh = new provider.RefreshToken({
    accountId: userId,
    client,
    grantId,
    scope: 'openid offline_access orders orders:read',
    gty: 'authorization_code',
    sessionUid: session.uid,
  } as never);
  const refreshToken = await refresh.save();
  const opaque = new provider.AccessToken({ accountId: userId, client, grantId, scope: 'openid', gty: 'authorization_code' } as never);
  const opaqueAccessToken = await opaque.save();
  const accessToken = await mintUserAccessToken(app, { sub: userId, scope: 'orders orders:read' });
  const resume = await exchange(app, 'orders-api', accessToken);
  if (resume.status !== 200) throw new Error(`exchange: ${JSON.stringify(resume.body)}`);
  const chained = await exchange(app, 'billing-worker', resume.body.access_token, { order: 1, step: 2 });
  if (chained.status !== 200) throw new Error(`chained exchange: ${JSON.stringify(chained.body)}`);
  return {
    sessionUid: session.uid,
    grantId,
    refreshToken,
    opaqueAccessToken,
    accessToken,
    resumeToken: resume.body.access_token,
    chainedResumeToken: chained.body.access_token,
  };
}

export function refresh(app: TestApp, refreshToken: string) {
  return app.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, { basic: DEMO.webBff });
}
