import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../../src/pki/issue.js';
import { createIntermediatePki, type IntermediatePki } from '../../fixtures/intermediate-pki.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

// TLS_CLIENT_CA_FILE holds only the root; orders-api's certificate comes from an issuing
// (intermediate) CA, which the client sends along (TLS) or the proxy forwards (RFC 9440 §2.3).
let pki: IntermediatePki;
let direct: TestApp;
let proxied: TestApp;
let orders: IssuedCertificate;

beforeAll(async () => {
  pki = await createIntermediatePki();
  orders = await pki.issueClient('orders-api', ['orders-api.clients.custos.test']);
  const tls = { TLS_CERT_FILE: pki.files.cert, TLS_KEY_FILE: pki.files.key, TLS_CLIENT_CA_FILE: pki.files.clientCa };
  [direct, proxied] = await Promise.all([startTestApp({ env: tls }), startTestApp({ env: { ...tls, TRUST_PROXY: '127.0.0.1' } })]);
});
afterAll(async () => {
  await Promise.all([direct?.stop(), proxied?.stop()]);
  await pki?.remove();
});

function thumbprintOf(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

const FORM = { grant_type: 'client_credentials', client_id: 'orders-api', scope: 'orders:read' };

describe('client certificates issued by an intermediate CA', () => {
  it('the fixture chain is what it should be: leaf ← intermediate ← root', () => {
    const [leaf, intermediate, root] = [orders.certificatePem, pki.intermediate.certificatePem, pki.root.certificatePem].map((pem) => new X509Certificate(pem));
    expect(leaf!.checkIssued(intermediate!) && leaf!.verify(intermediate!.publicKey)).toBe(true);
    expect(intermediate!.checkIssued(root!) && intermediate!.verify(root!.publicKey)).toBe(true);
    expect(leaf!.checkIssued(root!)).toBe(false);
  });

  it('over TLS, with the intermediate in the client\'s certificate chain, authenticate tls_client_auth', async () => {
    const agent = direct.agent({ certPem: orders.certificatePem + pki.intermediate.certificatePem, keyPem: orders.privateKeyPem });
    const { status, body } = await direct.token(FORM, { agent });
    expect([status, body.error]).toEqual([200, undefined]);
    expect(decodeJwt(body.access_token).cnf).toEqual({ 'x5t#S256': thumbprintOf(orders.certificatePem) });
    // Again on the same (kept-alive) connection: the chain must not be a first-request-only thing.
    const again = await direct.token(FORM, { agent });
    expect([again.status, again.body.error]).toEqual([200, undefined]);
  });

  it('over TLS, without the intermediate, are refused', async () => {
    const { status, body } = await direct.token(FORM, { agent: direct.agent({ certPem: orders.certificatePem, keyPem: orders.privateKeyPem }) });
    expect([status, body.error]).toEqual([401, 'invalid_client']);
  });

  it('from a trusted proxy, with the intermediate in Client-Cert-Chain, authenticate tls_client_auth', async () => {
    const sf = (pem: string) => `:${new X509Certificate(pem).raw.toString('base64')}:`;
    const send = async (headers: Record<string, string>) => {
      const response = await request(`${proxied.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(FORM).toString(),
        dispatcher: proxied.agent(),
      });
      return { status: response.statusCode, body: (await response.body.json()) as Record<string, any> };
    };
    const withChain = await send({ 'client-cert': sf(orders.certificatePem), 'client-cert-chain': sf(pki.intermediate.certificatePem) });
    expect([withChain.status, withChain.body.error]).toEqual([200, undefined]);
    expect(decodeJwt(withChain.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprintOf(orders.certificatePem) });
    const withoutChain = await send({ 'client-cert': sf(orders.certificatePem) });
    expect([withoutChain.status, withoutChain.body.error]).toEqual([401, 'invalid_client']);
  });
});
