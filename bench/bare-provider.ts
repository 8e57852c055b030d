/**
 * The reference server of `npm run bench`: bare oidc-provider (the version Custos runs on) with
 * its in-memory adapter, one `client_secret_basic` client, ES256 RFC 9068 JWT access tokens via
 * resource indicators, over HTTPS, and nothing else. Run as its own process by `bench/run.ts`.
 *
 * Env: BARE_PORT, BARE_TLS_CERT_FILE, BARE_TLS_KEY_FILE, BARE_SIGNING_JWK_FILE, BARE_RESOURCE.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const port = Number(env('BARE_PORT'));
const resource = env('BARE_RESOURCE');
const signingKey = JSON.parse(readFileSync(env('BARE_SIGNING_JWK_FILE'), 'utf8'));
const issuer = `https://localhost:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench-client',
      client_secret: 'bench-client-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'orders:read',
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['orders:read'],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'orders:read',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

const server = https.createServer(
  { cert: readFileSync(env('BARE_TLS_CERT_FILE')), key: readFileSync(env('BARE_TLS_KEY_FILE')), keepAliveTimeout: 60_000 },
  provider.callback(),
);
server.listen(port, '127.0.0.1', () => process.stdout.write(`bare oidc-provider listening on ${issuer}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
