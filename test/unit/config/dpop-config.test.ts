import { describe, expect, it } from 'vitest';
import { clientSchema, exchangePolicySchema } from '../../../src/config/files.js';

const mtlsClient = {
  client_id: 'mtls-job',
  token_endpoint_auth_method: 'tls_client_auth',
  tls_client_auth_san_dns: 'mtls-job.clients.custos.test',
  grant_types: ['client_credentials'],
};

describe('DPoP in the config files (RFC 9449)', () => {
  it('refuses a client that asks for two bindings (DPoP and certificate-bound tokens)', () => {
    const both = clientSchema.safeParse({ ...mtlsClient, dpop_bound_access_tokens: true });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]?.path).toEqual(['dpop_bound_access_tokens']);
    expect(clientSchema.safeParse({ ...mtlsClient, dpop_bound_access_tokens: true, tls_client_certificate_bound_access_tokens: false }).success).toBe(true);
    expect(clientSchema.safeParse({ client_id: 'spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], dpop_bound_access_tokens: true }).success).toBe(true);
  });

  it('takes accept_dpop_bound_subject_tokens as a boolean in an exchange policy', () => {
    const policy = { client_id: 'orders-api', scopes: { resume_orders: { lifetime: 60 } }, audiences: ['https://events.custos.test/orders'] };
    expect(exchangePolicySchema.parse(policy).accept_dpop_bound_subject_tokens).toBeUndefined();
    expect(exchangePolicySchema.parse({ ...policy, accept_dpop_bound_subject_tokens: true }).accept_dpop_bound_subject_tokens).toBe(true);
    expect(exchangePolicySchema.safeParse({ ...policy, accept_dpop_bound_subject_tokens: 'yes' }).success).toBe(false);
  });
});
