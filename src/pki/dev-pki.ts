import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, type PemKeyPair } from './ca.js';
import { createChainValidator, type ChainValidator } from './chain.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readOptionalFile, writeFileAtomic } from './files.js';
import { issueCertificate } from './issue.js';
import { x5tS256 } from './thumbprint.js';

export interface EnsureDevPkiOptions {
  /** Directory of the dev PKI, e.g. `keys/dev`. Created (mode 0700) when absent. */
  dir: string;
  /** DNS names (or IP literals) for the server certificate; `localhost`, 127.0.0.1 and ::1 are always added. */
  hostnames?: string[];
  /** Client names to issue mTLS client certificates for (letters, digits, `.`, `_`, `-`). */
  clients?: string[];
}

/** A certificate file, its key file, their contents and the certificate's RFC 8705 `x5t#S256`. */
export interface DevCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
  x5tS256: string;
}

/** What {@link ensureDevPki} created or found. */
export interface DevPki {
  dir: string;
  /** `<dir>/ca.pem`, `<dir>/ca.key.pem`: the dev root CA (the TLS `ca` bundle). */
  ca: DevCertificate;
  /** `<dir>/server.pem`, `<dir>/server.key.pem`: TLS server certificate (serverAuth). */
  server: DevCertificate;
  /** `<dir>/clients/<name>/cert.pem`, `key.pem`: client certificates (clientAuth), by name. */
  clients: Record<string, DevCertificate>;
  caPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** `<dir>/clients/<name>`. */
  clientDir(name: string): string;
}

/** Domain of the dev client certificates' dNSName SAN: `<name>.clients.custos.test`. */
export const DEV_CLIENT_DNS_SUFFIX = 'clients.custos.test';
/** Prefix of the dev client certificates' URI SAN (a SPIFFE ID): `spiffe://custos.test/client/<name>`. */
export const DEV_CLIENT_URI_PREFIX = 'spiffe://custos.test/client/';

const CA_COMMON_NAME = 'Custos Dev CA';
const CA_VALIDITY_DAYS = 3650;
const LEAF_VALIDITY_DAYS = 365;
const LOOPBACK_IPS = ['127.0.0.1', '::1'];
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LOCK_STALE_MS = 30_000;

/**
 * Development bootstrap of the internal PKI (never call it in production):
 * makes sure `dir` holds a root CA, a TLS server certificate for `hostnames`
 * and an RFC 8705 `tls_client_auth` client certificate per client name,
 * creating only what is missing. Idempotent: existing files are reused.
 *
 * A leaf certificate is (re)issued only when its files are missing, its key
 * does not match, it no longer chains to the CA (expired, or the CA was
 * replaced) or it lacks a requested name. An existing but unusable CA (one
 * file missing, expired, key mismatch) is an error: delete both CA files to
 * regenerate it. Files are written atomically; keys get mode 0600; concurrent
 * callers (e.g. parallel test workers) serialize on `<dir>/.lock`.
 */
export async function ensureDevPki(options: EnsureDevPkiOptions): Promise<DevPki> {
  for (const name of options.clients ?? []) {
    if (!CLIENT_NAME.test(name)) throw new Error(`invalid dev client name "${name}"`);
  }
  // Fast path without the lock: everything is there already (also works on a read-only dir).
  return (await loadDevPki(options, false)) ?? withLock(options.dir, async () => (await loadDevPki(options, true))!);
}

async function loadDevPki(options: EnsureDevPkiOptions, create: boolean): Promise<DevPki | undefined> {
  const { dir } = options;
  const ca = await ensureCa(dir, create);
  if (!ca) return undefined;

  const names = [...new Set(['localhost', ...(options.hostnames ?? [])])];
  const dns = names.filter((name) => isIP(name) === 0);
  const ips = [...new Set([...LOOPBACK_IPS, ...names.filter((name) => isIP(name) !== 0)])];
  const server = await ensureLeaf(
    join(dir, 'server.pem'),
    join(dir, 'server.key.pem'),
    create,
    createChainValidator(ca.certPem, { purpose: 'server' }),
    (cert) => dns.every((name) => cert.checkHost(name) === name) && ips.every((ip) => cert.checkIP(ip) !== undefined),
    () => issueCertificate(caPair(ca), { commonName: 'localhost', dns, ips, usage: 'server', validityDays: LEAF_VALIDITY_DAYS }),
  );
  if (!server) return undefined;

  const clientDir = (name: string): string => join(dir, 'clients', name);
  const clientValidator = createChainValidator(ca.certPem, { purpose: 'client' });
  const clients: Record<string, DevCertificate> = {};
  for (const name of options.clients ?? []) {
    const san = { dns: [`${name}.${DEV_CLIENT_DNS_SUFFIX}`], uri: [`${DEV_CLIENT_URI_PREFIX}${name}`] };
    const client = await ensureLeaf(
      join(clientDir(name), 'cert.pem'),
      join(clientDir(name), 'key.pem'),
      create,
      clientValidator,
      (cert) => hasSans(cert, [...san.dns.map((d) => `DNS:${d}`), ...san.uri.map((u) => `URI:${u}`)]),
      () => issueCertificate(caPair(ca), { commonName: name, ...san, usage: 'client', validityDays: LEAF_VALIDITY_DAYS }),
    );
    if (!client) return undefined;
    clients[name] = client;
  }

  return {
    dir,
    ca,
    server,
    clients,
    caPem: ca.certPem,
    caKeyPem: ca.keyPem,
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    clientDir,
  };
}

async function ensureCa(dir: string, create: boolean): Promise<DevCertificate | undefined> {
  const certPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'ca.key.pem');
  const [certPem, keyPem] = await Promise.all([readOptionalFile(certPath), readOptionalFile(keyPath)]);
  if (certPem === undefined && keyPem === undefined) {
    if (!create) return undefined;
    const created = await createCertificateAuthority({ commonName: CA_COMMON_NAME, validityDays: CA_VALIDITY_DAYS });
    return writePair(certPath, keyPath, { ...created, x5tS256: x5tS256(created.certificatePem) });
  }
  const cert = certPem === undefined ? undefined : new X509Certificate(certPem);
  if (
    cert?.ca === true &&
    keyPem !== undefined &&
    cert.checkPrivateKey(createPrivateKey(keyPem)) &&
    cert.validToDate.getTime() > Date.now()
  ) {
    return { certPath, keyPath, certPem: certPem!, keyPem, x5tS256: x5tS256(cert) };
  }
  // Without the lock this may be another process half-way through writing: retry under the lock.
  if (!create) return undefined;
  throw new Error(
    `the dev CA in ${dir} is unusable (a file is missing, not a CA, key mismatch or expired); ` +
      'delete ca.pem and ca.key.pem to regenerate it',
  );
}

async function ensureLeaf(
  certPath: string,
  keyPath: string,
  create: boolean,
  validator: ChainValidator,
  hasNames: (cert: X509Certificate) => boolean,
  issue: () => Promise<PemKeyPair & { x5tS256: string }>,
): Promise<DevCertificate | undefined> {
  const [certPem, keyPem] = await Promise.all([readOptionalFile(certPath), readOptionalFile(keyPath)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const cert = new X509Certificate(certPem);
    if (cert.checkPrivateKey(createPrivateKey(keyPem)) && validator.isTrusted(cert) && hasNames(cert)) {
      return { certPath, keyPath, certPem, keyPem, x5tS256: x5tS256(cert) };
    }
  }
  return create ? writePair(certPath, keyPath, await issue()) : undefined;
}

async function writePair(
  certPath: string,
  keyPath: string,
  pair: PemKeyPair & { x5tS256: string },
): Promise<DevCertificate> {
  // Key first: a reader that sees the new certificate also finds its key.
  await writeFileAtomic(keyPath, pair.privateKeyPem, PRIVATE_KEY_MODE);
  await writeFileAtomic(certPath, pair.certificatePem, CERTIFICATE_MODE);
  return { certPath, keyPath, certPem: pair.certificatePem, keyPem: pair.privateKeyPem, x5tS256: pair.x5tS256 };
}

function caPair(ca: DevCertificate): PemKeyPair {
  return { certificatePem: ca.certPem, privateKeyPem: ca.keyPem };
}

function hasSans(cert: X509Certificate, expected: string[]): boolean {
  const present = new Set((cert.subjectAltName ?? '').split(', '));
  return expected.every((name) => present.has(name));
}

/** Runs `fn` holding an exclusive lock file in `dir` (created with O_EXCL; stale after 30 s). */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lockPath = join(dir, '.lock');
  const deadline = Date.now() + 2 * LOCK_STALE_MS;
  for (;;) {
    try {
      await (await open(lockPath, 'wx', PRIVATE_KEY_MODE)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const lock = await stat(lockPath).catch(() => undefined);
      if (lock && Date.now() - lock.mtimeMs > LOCK_STALE_MS) await rm(lockPath, { force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockPath}`);
      else await sleep(25);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}
