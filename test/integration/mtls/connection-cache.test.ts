import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate, type IssuedCertificate } from '../../../src/pki/issue.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

// The peer certificate is read once per TLS connection and what is derived from it (SANs,
// subject, thumbprint) once per DER: these tests show that nothing leaks across certificates.

let app: TestApp;
let second: IssuedCertificate;
let devOrdersApi: { certPem: string; keyPem: string };

beforeAll(async () => {
  app = await startTestApp();
  const pki = app.custos.devPki!;
  devOrdersApi = pki.clients['orders-api']!;
  // Another certificate of the same client (same SANs, new key), from the configured CA.
  second = await issueCertificate(
    { certificatePem: pki.caPem, privateKeyPem: pki.caKeyPem },
    { commonName: 'orders-api', dns: ['orders-api.clients.custos.test'], uri: ['spiffe://custos.test/client/orders-api'], usage: 'client', validityDays: 1 },
  );
});
afterAll(async () => {
  await app?.stop();
});

const thumbprintOf = (certPem: string) => createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');

/** An agent holding a single keep-alive connection, so consecutive requests share it. */
function oneConnection(cert: { certPem: string; keyPem: string }): Agent {
  return new Agent({ connections: 1, connect: { ca: app.custos.tls.clientCaPem, cert: cert.certPem, key: cert.keyPem } });
}

async function boundTo(agent: Agent, clientId = 'orders-api'): Promise<{ status: number; cnf?: string; error?: string }> {
  const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: clientId, scope: 'orders:read' }, { agent });
  if (status !== 200) return { status, error: body.error };
  return { status, cnf: (decodeJwt(body.access_token).cnf as { 'x5t#S256': string })['x5t#S256'] };
}

describe('per-connection client certificate (RFC 8705 §3)', () => {
  it('binds every token of a keep-alive connection to that connection\'s certificate', async () => {
    const agent = oneConnection(devOrdersApi);
    try {
      for (let i = 0; i < 3; i++) expect(await boundTo(agent)).toEqual({ status: 200, cnf: thumbprintOf(devOrdersApi.certPem) });
    } finally {
      await agent.close();
    }
  });

  it('binds to another certificate of the same client on a new connection, and back', async () => {
    const first = oneConnection(devOrdersApi);
    const other = oneConnection({ certPem: second.certificatePem, keyPem: second.privateKeyPem });
    const again = oneConnection(devOrdersApi);
    try {
      expect(thumbprintOf(second.certificatePem)).not.toBe(thumbprintOf(devOrdersApi.certPem));
      expect(await boundTo(first)).toEqual({ status: 200, cnf: thumbprintOf(devOrdersApi.certPem) });
      expect(await boundTo(other)).toEqual({ status: 200, cnf: thumbprintOf(second.certificatePem) });
      expect(await boundTo(first)).toEqual({ status: 200, cnf: thumbprintOf(devOrdersApi.certPem) });
      // The same DER on a new connection (served from the DER cache) binds to the same thumbprint.
      expect(await boundTo(again)).toEqual({ status: 200, cnf: thumbprintOf(devOrdersApi.certPem) });
    } finally {
      await Promise.all([first.close(), other.close(), again.close()]);
    }
  });

  it('never reuses a subject match for another certificate: another client\'s certificate is refused', async () => {
    const own = oneConnection(devOrdersApi);
    const foreign = oneConnection(app.custos.devPki!.clients['billing-worker']!);
    try {
      expect((await boundTo(own)).status).toBe(200);
      expect(await boundTo(foreign)).toEqual({ status: 401, error: 'invalid_client' });
      // ...and its own client still authenticates with it (the refusal was not cached either).
      expect(await boundTo(foreign, 'billing-worker')).toEqual({ status: 200, cnf: thumbprintOf(app.custos.devPki!.clients['billing-worker']!.certPem) });
      expect(await boundTo(foreign)).toEqual({ status: 401, error: 'invalid_client' });
      expect((await boundTo(own)).status).toBe(200);
    } finally {
      await Promise.all([own.close(), foreign.close()]);
    }
  });

  it('a connection without a certificate stays without one', async () => {
    const anonymous = new Agent({ connections: 1, connect: { ca: app.custos.tls.clientCaPem } });
    try {
      expect(await boundTo(anonymous)).toEqual({ status: 401, error: 'invalid_client' });
      expect(await boundTo(anonymous)).toEqual({ status: 401, error: 'invalid_client' });
    } finally {
      await anonymous.close();
    }
  });
});
