import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { serializeItem, serializeList } from 'structured-headers';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { issueCertificate } from '../../../src/pki/issue.js';
import { formBody, startTestApp, type TestApp } from '../../helpers/app.js';

const UNTRUSTED_WARNING = 'Client-Cert header from an untrusted address ignored';

let trusted: TestApp;
let untrusted: TestApp;

beforeAll(async () => {
  // Our requests come from 127.0.0.1: trusted by the first app, not by the second.
  [trusted, untrusted] = await Promise.all([
    startTestApp({ env: { TRUST_PROXY: '127.0.0.1' } }),
    startTestApp({ env: { TRUST_PROXY: '10.9.9.9' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([trusted?.stop(), untrusted?.stop()]);
});

function derOf(certPem: string): Buffer {
  return new X509Certificate(certPem).raw;
}

/** RFC 9440 §2.2 `Client-Cert`: an sf-binary of the DER certificate. */
function clientCertHeader(certPem: string): string {
  const der = derOf(certPem);
  return serializeItem(der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer);
}

function thumbprintOf(certPem: string): string {
  return createHash('sha256').update(derOf(certPem)).digest('base64url');
}

function devCert(app: TestApp, name: string) {
  const cert = app.custos.devPki?.clients[name];
  if (!cert) throw new Error(`no dev certificate for ${name}`);
  return cert;
}

async function tokenRequest(app: TestApp, client: string, headers: Record<string, string>, agent: Agent = app.agent()) {
  const response = await request(`${app.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: formBody({ grant_type: 'client_credentials', client_id: client, scope: 'orders:read' }),
    dispatcher: agent,
  });
  const text = await response.body.text();
  return { status: response.statusCode, contentType: response.headers['content-type'], body: JSON.parse(text) as Record<string, any> };
}

describe('Client-Cert (RFC 9440) from a trusted proxy address', () => {
  it('authenticates the client by the forwarded certificate and binds the token to it', async () => {
    const orders = devCert(trusted, 'orders-api');
    const header = clientCertHeader(orders.certPem);
    expect(header).toBe(`:${derOf(orders.certPem).toString('base64')}:`);
    const { status, body } = await tokenRequest(trusted, 'orders-api', { 'client-cert': header });
    expect([status, body.error]).toEqual([200, undefined]);
    expect(decodeJwt(body.access_token)).toMatchObject({
      client_id: 'orders-api',
      cnf: { 'x5t#S256': thumbprintOf(orders.certPem) },
    });
  });

  it('accepts a hand-built sf-binary with a Client-Cert-Chain (RFC 9440 §2.3) list', async () => {
    const orders = devCert(trusted, 'orders-api');
    const ca = derOf(trusted.custos.devPki!.caPem);
    const chain = serializeList([[ca.buffer.slice(ca.byteOffset, ca.byteOffset + ca.byteLength) as ArrayBuffer, new Map()]]);
    expect(chain).toBe(`:${ca.toString('base64')}:`);
    const { status, body } = await tokenRequest(trusted, 'orders-api', {
      'client-cert': `:${derOf(orders.certPem).toString('base64')}:`,
      'client-cert-chain': chain,
    });
    expect([status, body.error]).toEqual([200, undefined]);
    expect(decodeJwt(body.access_token).cnf).toEqual({ 'x5t#S256': thumbprintOf(orders.certPem) });
  });

  it('still validates the forwarded certificate: another client\'s or an untrusted CA\'s certificate is invalid_client', async () => {
    const billing = await tokenRequest(trusted, 'orders-api', { 'client-cert': clientCertHeader(devCert(trusted, 'billing-worker').certPem) });
    expect([billing.status, billing.body.error]).toEqual([401, 'invalid_client']);

    const rogueCa = await createCertificateAuthority({ commonName: 'Rogue CA', validityDays: 30 });
    const rogue = await issueCertificate(rogueCa, { commonName: 'orders-api', dns: ['orders-api.clients.custos.test'], usage: 'client', validityDays: 30 });
    const forged = await tokenRequest(trusted, 'orders-api', { 'client-cert': clientCertHeader(rogue.certificatePem) });
    expect([forged.status, forged.body.error]).toEqual([401, 'invalid_client']);
    // ...also when the forged leaf comes with its own CA as the "chain".
    const withChain = await tokenRequest(trusted, 'orders-api', {
      'client-cert': clientCertHeader(rogue.certificatePem),
      'client-cert-chain': `:${derOf(rogueCa.certificatePem).toString('base64')}:`,
    });
    expect([withChain.status, withChain.body.error]).toEqual([401, 'invalid_client']);
  });

  it('refuses malformed headers with 400 invalid_request, never 5xx', async () => {
    const orders = devCert(trusted, 'orders-api');
    const cases: Array<[string, Record<string, string>]> = [
      ['token, not binary', { 'client-cert': 'not-base64' }],
      ['bad base64', { 'client-cert': ':!!!:' }],
      ['unterminated', { 'client-cert': `:${derOf(orders.certPem).toString('base64')}` }],
      ['binary, not DER', { 'client-cert': `:${Buffer.from('hello, not a certificate').toString('base64')}:` }],
      ['truncated DER', { 'client-cert': `:${derOf(orders.certPem).subarray(0, 100).toString('base64')}:` }],
      ['PEM text', { 'client-cert': orders.certPem.replace(/\n/g, ' ') }],
      ['inner list', { 'client-cert': `(:${derOf(orders.certPem).toString('base64')}:)` }],
      ['bad chain', { 'client-cert': clientCertHeader(orders.certPem), 'client-cert-chain': ':!!!:' }],
      ['chain of non-DER', { 'client-cert': clientCertHeader(orders.certPem), 'client-cert-chain': ':aGVsbG8=:' }],
    ];
    for (const [name, headers] of cases) {
      const { status, body, contentType } = await tokenRequest(trusted, 'orders-api', headers);
      expect([name, status, body.error]).toEqual([name, 400, 'invalid_request']);
      expect(contentType).toMatch(/^application\/json/);
      expect(body.access_token).toBeUndefined();
    }
  });
});

describe('Client-Cert from an address that is not a trusted proxy', () => {
  it('is ignored and logged: the client is not authenticated by it', async () => {
    untrusted.logs.length = 0;
    const { status, body } = await tokenRequest(untrusted, 'orders-api', { 'client-cert': clientCertHeader(devCert(untrusted, 'orders-api').certPem) });
    expect([status, body.error]).toEqual([401, 'invalid_client']);
    const warnings = untrusted.logs
      .flatMap((chunk) => chunk.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as { level: number; msg: string; remoteAddress?: string })
      .filter((entry) => entry.msg === UNTRUSTED_WARNING);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, remoteAddress: '127.0.0.1' });
  });

  it('does not override the TLS client certificate', async () => {
    // The TLS peer is billing-worker; a forged header claims orders-api.
    const billing = devCert(untrusted, 'billing-worker');
    const forgedHeader = { 'client-cert': clientCertHeader(devCert(untrusted, 'orders-api').certPem) };
    const asOrders = await tokenRequest(untrusted, 'orders-api', forgedHeader, untrusted.clientAgent('billing-worker'));
    expect([asOrders.status, asOrders.body.error]).toEqual([401, 'invalid_client']);
    const asBilling = await tokenRequest(untrusted, 'billing-worker', forgedHeader, untrusted.clientAgent('billing-worker'));
    expect([asBilling.status, asBilling.body.error]).toEqual([200, undefined]);
    expect(decodeJwt(asBilling.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprintOf(billing.certPem) });
  });

  it('malformed headers are ignored too (no 400 from an untrusted address)', async () => {
    const { status, body } = await tokenRequest(untrusted, 'orders-api', { 'client-cert': ':!!!:' }, untrusted.clientAgent('orders-api'));
    expect([status, body.error]).toEqual([200, undefined]);
  });
});
