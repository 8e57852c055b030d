import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../../../src/pki/ca.js';
import { createChainValidator } from '../../../src/pki/chain.js';
import { ensureDevPki } from '../../../src/pki/dev-pki.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';

describe('ensureDevPki', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-dev-pki-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const snapshot = async (root: string): Promise<Record<string, string>> => {
    const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    const entries = await Promise.all(
      files.map(async (f) => [join(f.parentPath, f.name).slice(root.length + 1), await readFile(join(f.parentPath, f.name), 'utf8')]),
    );
    return Object.fromEntries(entries);
  };

  it('creates the CA, server and client certificates with the documented layout and modes', async () => {
    const pki = await ensureDevPki({ dir, hostnames: ['custos.local'], clients: ['orders', 'billing'] });

    expect(Object.keys(await snapshot(dir)).sort()).toEqual([
      'ca.key.pem',
      'ca.pem',
      'clients/billing/cert.pem',
      'clients/billing/key.pem',
      'clients/orders/cert.pem',
      'clients/orders/key.pem',
      'server.key.pem',
      'server.pem',
    ]);
    for (const key of ['ca.key.pem', 'server.key.pem', 'clients/orders/key.pem']) {
      expect((await stat(join(dir, key))).mode & 0o777).toBe(0o600);
    }
    expect(pki.caPem).toBe(await readFile(join(dir, 'ca.pem'), 'utf8'));
    expect(pki.serverKeyPem).toBe(await readFile(join(dir, 'server.key.pem'), 'utf8'));
    expect(pki.clientDir('orders')).toBe(join(dir, 'clients', 'orders'));
    expect(pki.clients.orders!.certPath).toBe(join(dir, 'clients', 'orders', 'cert.pem'));

    const server = new X509Certificate(pki.serverCertPem);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkHost('custos.local')).toBe('custos.local');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('::1')).toBeDefined();
    expect(createChainValidator(pki.caPem, { purpose: 'server' }).isTrusted(server)).toBe(true);

    const orders = new X509Certificate(pki.clients.orders!.certPem);
    expect(orders.subject).toBe('CN=orders');
    expect(orders.subjectAltName).toBe('DNS:orders.clients.custos.test, URI:spiffe://custos.test/client/orders');
    expect(createChainValidator(pki.caPem).isTrusted(orders)).toBe(true);
    expect(pki.clients.orders!.x5tS256).toBe(x5tS256(orders));
  });

  it('is idempotent: a second call reuses the same files', async () => {
    const options = { dir, hostnames: ['localhost'], clients: ['orders'] };
    const first = await ensureDevPki(options);
    const before = await snapshot(dir);
    const second = await ensureDevPki(options);
    expect(await snapshot(dir)).toEqual(before);
    expect(second.caPem).toBe(first.caPem);
    expect(second.serverCertPem).toBe(first.serverCertPem);
    expect(second.clients.orders).toEqual(first.clients.orders);
  });

  it('adds what is missing and reissues only leaves that no longer fit', async () => {
    const first = await ensureDevPki({ dir, clients: ['orders'] });
    const second = await ensureDevPki({ dir, hostnames: ['api.custos.test'], clients: ['orders', 'billing'] });
    expect(second.caPem).toBe(first.caPem);
    expect(second.clients.orders).toEqual(first.clients.orders);
    expect(second.clients.billing).toBeDefined();
    expect(second.serverCertPem).not.toBe(first.serverCertPem); // new host name
    expect(new X509Certificate(second.serverCertPem).checkHost('api.custos.test')).toBe('api.custos.test');

    // A leaf issued by a CA that is not the dev CA is replaced.
    const foreign = await createCertificateAuthority({ commonName: 'Foreign', validityDays: 1 });
    await writeFile(join(dir, 'clients', 'orders', 'cert.pem'), foreign.certificatePem);
    await writeFile(join(dir, 'clients', 'orders', 'key.pem'), foreign.privateKeyPem);
    const third = await ensureDevPki({ dir, clients: ['orders'] });
    expect(createChainValidator(third.caPem).isTrusted(new X509Certificate(third.clients.orders!.certPem))).toBe(true);
  });

  it('serializes concurrent callers on one CA', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => ensureDevPki({ dir, clients: ['orders'] })));
    expect(new Set(results.map((pki) => pki.caPem)).size).toBe(1);
    expect(new Set(results.map((pki) => pki.clients.orders!.certPem)).size).toBe(1);
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp') || name === '.lock')).toEqual([]);
  });

  it('refuses a half-present CA and bad client names', async () => {
    await ensureDevPki({ dir });
    await rm(join(dir, 'ca.key.pem'));
    await expect(ensureDevPki({ dir })).rejects.toThrow(/delete ca.pem and ca.key.pem/);
    await expect(ensureDevPki({ dir, clients: ['../evil'] })).rejects.toThrow(/invalid dev client name/);
  });
});
