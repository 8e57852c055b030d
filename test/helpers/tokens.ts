import type { TestApp } from './app.js';

/**
 * Mints a user access token through the running provider's own models (as the authorization
 * code flow would): an ES256 RFC 9068 JWT for `resource`, issued to `clientId`.
 */
export async function mintUserAccessToken(
  app: TestApp,
  options: { sub?: string; clientId?: string; scope?: string; resource?: string; ttl?: number; extra?: Record<string, unknown>; jkt?: string } = {},
): Promise<string> {
  const provider = app.custos.provider();
  const client = await provider.Client.find(options.clientId ?? 'web-bff');
  if (!client) throw new Error(`unknown client ${options.clientId}`);
  const resource = options.resource ?? 'https://api.custos.test/orders';
  const scope = options.scope ?? 'orders orders:read';
  const token = new provider.AccessToken({
    accountId: options.sub ?? 'alice',
    client,
    scope,
    gty: 'authorization_code',
    grantId: 'test-grant',
    extra: options.extra,
  } as never);
  // A DPoP-bound token (RFC 9449 §6.1 `cnf.jkt`), as oidc-provider binds it at the token endpoint.
  if (options.jkt) (token as unknown as { setThumbprint(kind: 'jkt', jkt: string): void }).setThumbprint('jkt', options.jkt);
  token.resourceServer = new provider.ResourceServer(resource, {
    scope,
    audience: resource,
    accessTokenTTL: options.ttl ?? 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256', kid: app.custos.keys().current.kid } },
  });
  return token.save();
}
