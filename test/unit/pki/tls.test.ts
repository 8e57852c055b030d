import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChainValidator } from '../../../src/pki/chain.js';
import { ensureDevPki, type DevPki } from '../../../src/pki/dev-pki.js';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { issueCertificate } from '../../../src/pki/issue.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';

interface Seen {
  authorized: boolean;
  cert: X509Certificate | undefined;
}

/** Starts a TLS server like the public listener (client certificate requested, optional), returns what it saw per connection. */
async function startServer(pki: DevPki): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer(
    { cert: pki.serverCertPem, key: pki.serverKeyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: false },
    (socket: TLSSocket) => {
      seen.push({ authorized: socket.authorized, cert: socket.getPeerX509Certificate() });
      socket.end('ok');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { port, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function handshake(port: number, ca: string, client?: { cert: string; key: string }): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...client });
  await once(socket, 'secureConnect');
  expect(socket.authorized).toBe(true); // the dev server certificate verifies against the dev CA
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('mTLS handshake with the dev PKI', () => {
  let dir: string;
  let pki: DevPki;
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-tls-'));
    pki = await ensureDevPki({ dir, hostnames: ['localhost'], clients: ['orders'] });
    server = await startServer(pki);
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sees the dev client certificate, trusts it, and its x5t#S256 is the issued one', async () => {
    const orders = pki.clients.orders!;
    expect(await handshake(server.port, pki.caPem, { cert: orders.certPem, key: orders.keyPem })).toBe('ok');
    const seen = server.seen.at(-1)!;
    expect(seen.authorized).toBe(true);
    expect(seen.cert).toBeDefined();
    expect(createChainValidator(pki.caPem).isTrusted(seen.cert!)).toBe(true);
    expect(x5tS256(seen.cert!)).toBe(orders.x5tS256);
  });

  it('binds the thumbprint returned by issueCertificate to the certificate seen on the wire', async () => {
    const issued = await issueCertificate(
      { certificatePem: pki.caPem, privateKeyPem: pki.caKeyPem },
      { commonName: 'fresh', uri: ['spiffe://custos.test/client/fresh'], usage: 'client', validityDays: 1 },
    );
    await handshake(server.port, pki.caPem, { cert: issued.certificatePem, key: issued.privateKeyPem });
    const seen = server.seen.at(-1)!;
    expect(createChainValidator(pki.caPem).isTrusted(seen.cert!)).toBe(true);
    expect(x5tS256(seen.cert!)).toBe(issued.x5tS256);
  });

  it('lets a client from a foreign CA connect but not be trusted, and a client without a certificate', async () => {
    const foreignCa = await createCertificateAuthority({ commonName: 'Foreign CA', validityDays: 1 });
    const foreign = await issueCertificate(foreignCa, { commonName: 'intruder', usage: 'client', validityDays: 1 });
    await handshake(server.port, pki.caPem, { cert: foreign.certificatePem, key: foreign.privateKeyPem });
    const intruder = server.seen.at(-1)!;
    expect(intruder.authorized).toBe(false);
    expect(createChainValidator(pki.caPem).isTrusted(intruder.cert!)).toBe(false);

    await handshake(server.port, pki.caPem);
    expect(server.seen.at(-1)).toEqual({ authorized: false, cert: undefined });
  });
});
