import { describe, expect, it } from 'vitest';
import { clientSchema } from '../../../src/config/files.js';

/** A registration that meets the FAPI 2.0 Security Profile: mTLS client, certificate-bound tokens, https, code. */
const fapi2 = {
  client_id: 'bank-app',
  profile: 'fapi2',
  token_endpoint_auth_method: 'tls_client_auth',
  tls_client_auth_san_dns: 'bank-app.clients.custos.test',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['https://bank-app.example/callback'],
};

function problems(client: Record<string, unknown>) {
  const parsed = clientSchema.safeParse(client);
  return parsed.success ? [] : parsed.error.issues.map((issue) => issue.path.join('.'));
}

describe('profile: "fapi2" in config/clients.json', () => {
  it('accepts a registration that meets the profile (mTLS or private_key_jwt, sender-constrained)', () => {
    expect(problems(fapi2)).toEqual([]);
    expect(problems({ ...fapi2, token_endpoint_auth_method: 'private_key_jwt', tls_client_auth_san_dns: undefined, jwks: { keys: [] }, dpop_bound_access_tokens: true })).toEqual([]);
  });

  it('names each field that breaks the profile', () => {
    expect(problems({ ...fapi2, token_endpoint_auth_method: 'client_secret_basic', tls_client_auth_san_dns: undefined, client_secret_hash: '$argon2id$x' })).toEqual([
      'token_endpoint_auth_method',
      'dpop_bound_access_tokens',
    ]);
    expect(problems({ ...fapi2, tls_client_certificate_bound_access_tokens: false })).toEqual(['dpop_bound_access_tokens']);
    expect(problems({ ...fapi2, grant_types: ['authorization_code', 'implicit'] })).toEqual(['grant_types']);
    expect(problems({ ...fapi2, response_types: ['code', 'code id_token'] })).toEqual(['response_types']);
    expect(problems({ ...fapi2, require_pushed_authorization_requests: false })).toEqual(['require_pushed_authorization_requests']);
    expect(problems({ ...fapi2, redirect_uris: ['http://localhost:3000/callback'] })).toEqual(['redirect_uris.0']);
    expect(problems({ ...fapi2, profile: 'fapi1' })).toEqual(['profile']);
  });

  it('leaves other clients alone (a secret client with an http loopback redirect)', () => {
    expect(problems({ ...fapi2, profile: undefined, redirect_uris: ['http://localhost:3000/callback'], require_pushed_authorization_requests: false })).toEqual([]);
  });
});
