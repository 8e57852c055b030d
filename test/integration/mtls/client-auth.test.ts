import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { createSelfSignedClientCertificate, issueCertificate, type SelfSignedClientCertificate } from '../../../src/pki/issue.js';
import { startResourceServer } from '../../fixtures/resource-server.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';

const ORDERS_SAN = { dns: ['orders-api.clients.custos.test'], uri: ['spiffe://custos.test/client/orders-api'] };

let config: TempConfigDir;
let app: TestApp;
let edgeDevice: SelfSignedClientCertificate;
/** `error_detail` of every token endpoint error (oidc-provider `grant.error`): why a request was refused. */
const refusals: string[] = [];

beforeAll(async () => {
  edgeDevice = await createSelfSignedClientCertificate({ commonName: 'edge-device', dns: ['edge-device.example'], validityDays: 30 });
  config = await configDirWithClients([
    {
      client_id: 'edge-device',
      client_name: 'Edge device (self-signed certificate)',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [edgeDevice.jwk] },
      tls_client_certificate_bound_access_tokens: true,
      grant_types: ['client_credentials'],
      scope: 'orders:read',
      resources: [DEMO.ordersResource],
      default_resource: DEMO.ordersResource,
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
  app.custos.provider().on('grant.error', (_ctx: unknown, error: { error_detail?: string }) => {
    refusals.push(error.error_detail ?? '(none)');
  });
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

function thumbprintOf(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

async function tokenWith(client: string, cert: { certPem: string; keyPem: string } | undefined) {
  refusals.length = 0;
  const result = await app.token({ grant_type: 'client_credentials', client_id: client, scope: 'orders:read' }, { agent: app.agent(cert) });
  return { ...result, refusal: refusals.at(-1) };
}

const NOT_VERIFIED = 'client certificate was not verified';
const UNREGISTERED = 'unregistered client certificate provided';

describe('tls_client_auth (RFC 8705 §2.1)', () => {
  it('accepts the client\'s own dev certificate (control for the refusals below)', async () => {
    const own = app.custos.devPki!.clients['orders-api']!;
    const { status, body, refusal } = await tokenWith('orders-api', own);
    expect([status, body.error, refusal]).toEqual([200, undefined, undefined]);
    expect(decodeJwt(body.access_token).cnf).toEqual({ 'x5t#S256': thumbprintOf(own.certPem) });
  });

  it('refuses a certificate with the right SAN from a CA that is not configured', async () => {
    const rogueCa = await createCertificateAuthority({ commonName: 'Custos Dev CA', validityDays: 30 });
    const rogue = await issueCertificate(rogueCa, { commonName: 'orders-api', ...ORDERS_SAN, usage: 'client', validityDays: 30 });
    expect(new X509Certificate(rogue.certificatePem).subjectAltName).toContain('DNS:orders-api.clients.custos.test');
    const { status, body, refusal } = await tokenWith('orders-api', { certPem: rogue.certificatePem, keyPem: rogue.privateKeyPem });
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', NOT_VERIFIED]);
    expect(body.access_token).toBeUndefined();
  });

  it('refuses another client\'s dev certificate', async () => {
    const { status, body, refusal } = await tokenWith('orders-api', app.custos.devPki!.clients['billing-worker']);
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', 'certificate subject value does not match the registered one']);
  });

  it('refuses a certificate from the configured CA with the right SAN that is expired', async () => {
    const ca = { certificatePem: app.custos.devPki!.caPem, privateKeyPem: app.custos.devPki!.caKeyPem };
    const day = 86_400_000;
    const expired = await issueCertificate(ca, {
      commonName: 'orders-api',
      ...ORDERS_SAN,
      usage: 'client',
      validityDays: 1,
      notBefore: new Date(Date.now() - 3 * day),
      notAfter: new Date(Date.now() - day),
    });
    const { status, body, refusal } = await tokenWith('orders-api', { certPem: expired.certificatePem, keyPem: expired.privateKeyPem });
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', NOT_VERIFIED]);
  });

  it('refuses a certificate from the configured CA with the right SAN but only serverAuth usage', async () => {
    const ca = { certificatePem: app.custos.devPki!.caPem, privateKeyPem: app.custos.devPki!.caKeyPem };
    const server = await issueCertificate(ca, { commonName: 'orders-api', ...ORDERS_SAN, usage: 'server', validityDays: 1 });
    const { status, body, refusal } = await tokenWith('orders-api', { certPem: server.certificatePem, keyPem: server.privateKeyPem });
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', NOT_VERIFIED]);
  });

  it('refuses a registered self-signed certificate for a tls_client_auth client', async () => {
    const { status, body, refusal } = await tokenWith('orders-api', { certPem: edgeDevice.certificatePem, keyPem: edgeDevice.privateKeyPem });
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', NOT_VERIFIED]);
  });
});

describe('self_signed_tls_client_auth (RFC 8705 §2.2)', () => {
  it('authenticates the registered self-signed certificate and binds the token to it', async () => {
    const { status, body } = await tokenWith('edge-device', { certPem: edgeDevice.certificatePem, keyPem: edgeDevice.privateKeyPem });
    expect([status, body.error]).toEqual([200, undefined]);
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({ client_id: 'edge-device', scope: 'orders:read', aud: DEMO.ordersResource });
    expect(claims.cnf).toEqual({ 'x5t#S256': thumbprintOf(edgeDevice.certificatePem) });
    expect(edgeDevice.x5tS256).toBe(thumbprintOf(edgeDevice.certificatePem));

    // The reference resource server honours it over the same (self-signed, not CA-issued) certificate only.
    const rs = await startResourceServer({
      issuer: app.issuer,
      audience: DEMO.ordersResource,
      caPem: app.custos.devPki!.caPem,
      serverCertPem: app.custos.devPki!.server.certPem,
      serverKeyPem: app.custos.devPki!.server.keyPem,
    });
    try {
      const call = async (cert: { certPem: string; keyPem: string }) => {
        const response = await request(`${rs.url}/orders`, { headers: { authorization: `Bearer ${body.access_token}` }, dispatcher: app.agent(cert) });
        return [response.statusCode, ((await response.body.json()) as { error?: string; client_id?: string })] as const;
      };
      expect(await call({ certPem: edgeDevice.certificatePem, keyPem: edgeDevice.privateKeyPem })).toEqual([
        200,
        { sub: 'edge-device', client_id: 'edge-device', scope: 'orders:read' },
      ]);
      expect(await call(app.custos.devPki!.clients['orders-api']!)).toEqual([401, { error: 'binding_mismatch' }]);
    } finally {
      await rs.close();
    }
  });

  it('refuses a different self-signed certificate, even with the same subject', async () => {
    const other = await createSelfSignedClientCertificate({ commonName: 'edge-device', dns: ['edge-device.example'], validityDays: 30 });
    const { status, body, refusal } = await tokenWith('edge-device', { certPem: other.certificatePem, keyPem: other.privateKeyPem });
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', UNREGISTERED]);
  });

  it('refuses a CA-issued certificate that is not registered', async () => {
    const { status, body, refusal } = await tokenWith('edge-device', app.custos.devPki!.clients['orders-api']);
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', UNREGISTERED]);
  });

  it('refuses a request without a certificate', async () => {
    const { status, body, refusal } = await tokenWith('edge-device', undefined);
    expect([status, body.error, refusal]).toEqual([401, 'invalid_client', 'client certificate was not provided']);
  });
});
