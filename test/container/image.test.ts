// Builds the Containerfile as docs/operators.md "Container image" says, provisions keys and PKI with the
// image's own CLI and runs it read-only with the documented mounts (buildah in place of podman).
import { randomBytes } from 'node:crypto';
import { chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x5tS256 } from '../../src/pki/thumbprint.js';
import { createTestDatabase } from '../helpers/database.js';
import { buildah, CACHE_DIR, ensureBaseImage, ensureTools, sh } from './buildah.js';
import { checkoutImage, type Mount, type Rootfs } from './run-image.js';
import { freePort } from '../../scripts/free-port.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const IMAGE = `localhost/custos-test:${process.pid}`;
const UID = 10001;
const log = (message: string) => process.stderr.write(`[test:container] ${message}\n`);

let rootfs: Rootfs | undefined;
let work: string;
let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
let built = false;

beforeAll(async () => {
  await ensureTools();
  const base = await ensureBaseImage(log);
  const started = Date.now();
  await buildah([
    'bud', '--isolation', 'chroot', '--format', 'docker', '--layers=false',
    '--build-arg', `BASE_IMAGE=${base}`, '--build-arg', `REVISION=test-${process.pid}`,
    '-f', 'Containerfile', '-t', IMAGE, ROOT,
  ]);
  built = true;
  log(`image ${IMAGE} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  rootfs = await checkoutImage(IMAGE);
  await mkdir(CACHE_DIR, { recursive: true });
  work = await mkdtemp(path.join(CACHE_DIR, 'run-'));
  database = await createTestDatabase();
});

afterAll(async () => {
  await rootfs?.remove().catch((error) => log(`cleanup: ${error.message}`));
  if (built) await buildah(['rmi', '--force', IMAGE]).catch((error) => log(`cleanup: ${error.message}`));
  // Intermediate (build stage) images left by the build.
  const dangling = (await buildah(['images', '--quiet', '--filter', 'dangling=true']).catch(() => '')).split('\n').filter(Boolean);
  if (dangling.length > 0) await buildah(['rmi', '--force', ...dangling]).catch(() => {});
  await database?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('container image', () => {
  it('declares a non-root user, the ports, a health check, OCI labels and a read-only-friendly layout', async () => {
    const config = rootfs!.config;
    expect(config.User).toBe(`${UID}:${UID}`);
    expect(Object.keys(config.ExposedPorts ?? {}).sort()).toEqual(['8443/tcp', '9443/tcp']);
    expect(config.Healthcheck?.Test).toEqual(['CMD', 'node', '/app/bin/healthcheck.js']);
    expect(config.Labels).toMatchObject({ 'org.opencontainers.image.title': 'Custos', 'org.opencontainers.image.revision': `test-${process.pid}` });
    expect(config.Env).toContain('NODE_ENV=production');
    expect(Object.keys(config.Volumes ?? {})).toEqual(['/tmp']);
    // No dev keys, demo config, sources, tests or dev dependencies in the image.
    const files = (await sh('find', [rootfs!.path + '/app', rootfs!.path + '/etc/custos', '-name', 'node_modules', '-prune', '-o', '-print'])).split('\n');
    const relative = files.filter(Boolean).map((file) => file.slice(rootfs!.path.length));
    const forbidden = /\.pem$|\.jwk\.json$|cookie-keys\.json$|\.ts$|^\/etc\/custos\/[^/]+\/.|^\/app\/(src|test|config|keys|\.data|\.cache)(\/|$)/;
    expect(relative.filter((file) => forbidden.test(file))).toEqual([]);
    expect(relative).toContain('/app/dist/src/cli/custos.js');
    const modules = await readdir(path.join(rootfs!.path, 'app/node_modules'));
    expect(modules).not.toContain('typescript');
    expect(modules).not.toContain('vitest');
    expect(await readdir(path.join(rootfs!.path, 'etc/custos'))).toEqual(['config', 'keys', 'tls']);
  });

  it('runs as uid 10001 on a read-only root with provisioned production material, and answers', async () => {
    const rfs = rootfs!;
    const dirs = { keys: path.join(work, 'keys'), pki: path.join(work, 'pki'), config: path.join(work, 'config'), tls: path.join(work, 'tls') };
    for (const dir of Object.values(dirs)) {
      await mkdir(dir, { recursive: true });
      await chown(dir, UID, UID);
    }
    const cli = async (args: string[], mounts: Mount[], input?: string) => {
      const result = await rfs.run({ command: [...rfs.config.Entrypoint, ...args], mounts, input });
      expect(result.code, `custos ${args.join(' ')}: ${result.stderr}${result.stdout}`).toBe(0);
      return result.stdout.trim();
    };

    // The operator provisions everything with the image's own CLI (as uid 10001, read-only root).
    const keysRw: Mount = { source: dirs.keys, target: '/etc/custos/keys', readOnly: false };
    const pkiRw: Mount = { source: dirs.pki, target: '/etc/custos/tls', readOnly: false };
    expect(await cli(['keys', 'init'], [keysRw])).toMatch(/created current \S+ and next \S+/);
    await cli(['pki', 'init', '--dir', '/etc/custos/tls/ca', '--cn', 'Custos Test CA'], [pkiRw]);
    await cli(['pki', 'issue', '--name', 'localhost', '--usage', 'server', '--dns', 'localhost', '--ip', '127.0.0.1', '::1', '--out', '/etc/custos/tls/server', '--ca-dir', '/etc/custos/tls/ca'], [pkiRw]);
    const clientThumbprint = await cli(['pki', 'issue', '--name', 'orders-api', '--dns', 'orders-api.clients.example.test', '--out', '/etc/custos/tls/orders-api', '--ca-dir', '/etc/custos/tls/ca'], [pkiRw]);
    const secret = randomBytes(24).toString('base64url');
    const secretHash = await cli(['clients', 'hash-secret'], [], `${secret}\n`);
    expect(secretHash).toMatch(/^\$argon2id\$/);

    // What the server gets: keys, config, server certificate and the client CA (never the CA key).
    for (const file of ['server/cert.pem', 'server/key.pem', 'ca/ca.pem']) {
      await copyFile(path.join(dirs.pki, file), path.join(dirs.tls, path.basename(file) === 'ca.pem' ? 'client-ca.pem' : path.basename(file)));
      await chown(path.join(dirs.tls, path.basename(file) === 'ca.pem' ? 'client-ca.pem' : path.basename(file)), UID, UID);
    }
    const orders = 'https://api.example.test/orders';
    await writeFile(path.join(dirs.config, 'custos.json'), JSON.stringify({
      resource_servers: [{ identifier: orders, scopes: ['orders:read'], accessTokenTTL: 300 }],
      clients: [
        { client_id: 'reporting-job', client_secret_hash: secretHash, grant_types: ['client_credentials'], scope: 'orders:read', resources: [orders], default_resource: orders },
        { client_id: 'orders-api', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'orders-api.clients.example.test', grant_types: ['client_credentials'], scope: 'orders:read', resources: [orders], default_resource: orders },
      ],
    }));

    const port = await freePort();
    const issuer = `https://localhost:${port}`;
    const env = {
      PORT: String(port),
      ADMIN_PORT: '0',
      ISSUER: issuer,
      DATABASE_URL: database!.url,
      TLS_CERT_FILE: '/etc/custos/tls/cert.pem',
      TLS_KEY_FILE: '/etc/custos/tls/key.pem',
      TLS_CLIENT_CA_FILE: '/etc/custos/tls/client-ca.pem',
      LOG_LEVEL: 'info',
    };
    const mounts: Mount[] = [
      { source: dirs.keys, target: '/etc/custos/keys', readOnly: true },
      { source: dirs.config, target: '/etc/custos/config', readOnly: true },
      { source: dirs.tls, target: '/etc/custos/tls', readOnly: true },
    ];
    // `custos migrate` from the image (what an upgrade runs first), then the server finds nothing to do.
    const migrated = await rfs.run({ env, mounts, command: [...rfs.config.Entrypoint, 'migrate'] });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/^applied: \d{14}_/);
    const server = rfs.spawn({ env, mounts });
    server.stdin!.end();
    let output = '';
    server.stdout!.on('data', (chunk) => (output += chunk));
    server.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    const ca = await readFile(path.join(dirs.pki, 'ca/ca.pem'), 'utf8');
    const agent = new Agent({ connect: { ca } });
    const clientAgent = new Agent({
      connect: { ca, cert: await readFile(path.join(dirs.pki, 'orders-api/cert.pem'), 'utf8'), key: await readFile(path.join(dirs.pki, 'orders-api/key.pem'), 'utf8') },
    });
    try {
      const deadline = Date.now() + 60_000;
      while (!output.includes('Custos is running at')) {
        if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the image did not start:\n${output}`);
        await sleep(100);
      }
      // The process is the entrypoint itself, as uid/gid 10001.
      const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(UID));
      expect(/^Gid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(UID));

      const discovery = await request(`${issuer}/.well-known/openid-configuration`, { dispatcher: agent });
      expect(discovery.statusCode).toBe(200);
      const metadata = (await discovery.body.json()) as { issuer: string; jwks_uri: string; token_endpoint: string };
      expect(metadata.issuer).toBe(issuer);
      expect(metadata.jwks_uri).toBe(`${issuer}/jwks`);

      const jwksResponse = await request(metadata.jwks_uri, { dispatcher: agent });
      expect(jwksResponse.statusCode).toBe(200);
      const jwks = (await jwksResponse.body.json()) as { keys: Array<{ kid: string; d?: string }> };
      const stored = JSON.parse(await readFile(path.join(dirs.keys, 'signing/current.jwk.json'), 'utf8')) as { kid: string };
      expect(jwks.keys.map((key) => key.kid)).toContain(stored.kid);
      expect(jwks.keys.every((key) => key.d === undefined)).toBe(true);

      const token = await request(metadata.token_endpoint, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`reporting-job:${secret}`).toString('base64')}` },
        body: 'grant_type=client_credentials&scope=orders%3Aread',
      });
      const issued = (await token.body.json()) as { access_token: string };
      expect(token.statusCode, JSON.stringify(issued)).toBe(200);
      const { payload, protectedHeader } = await jwtVerify(issued.access_token, createLocalJWKSet(jwks as never), { issuer, audience: orders });
      expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: stored.kid });
      expect(payload.client_id).toBe('reporting-job');

      // mTLS client with a certificate from `custos pki issue`: the token is bound to it.
      const bound = await request(metadata.token_endpoint, {
        method: 'POST',
        dispatcher: clientAgent,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'client_id=orders-api&grant_type=client_credentials&scope=orders%3Aread',
      });
      const boundBody = (await bound.body.json()) as { access_token: string };
      expect(bound.statusCode, JSON.stringify(boundBody)).toBe(200);
      const boundClaims = (await jwtVerify(boundBody.access_token, createLocalJWKSet(jwks as never), { issuer })).payload;
      expect(boundClaims.cnf).toEqual({ 'x5t#S256': clientThumbprint });
      expect(clientThumbprint).toBe(x5tS256(await readFile(path.join(dirs.pki, 'orders-api/cert.pem'), 'utf8')));

      // The image's HEALTHCHECK command, run like a container engine does (same env, same user).
      const health = await rfs.run({ env, mounts, command: rfs.config.Healthcheck!.Test.slice(1) });
      expect(health.code, health.stderr).toBe(0);
      // The root filesystem is read-only for the server's user; /tmp is the writable path.
      const write = await rfs.run({ command: ['node', '-e', "const fs=require('fs');for(const f of ['/app/x','/etc/custos/keys/x','/tmp/x']){try{fs.writeFileSync(f,'');console.log(f,'ok')}catch(e){console.log(f,e.code)}}"], mounts });
      expect(write.stdout.trim().split('\n')).toEqual(['/app/x EROFS', '/etc/custos/keys/x EROFS', '/tmp/x ok']);
      // Nothing was written into the mounted material.
      expect((await readdir(dirs.keys)).sort()).toEqual(['cookie-keys.json', 'signing', 'ssf-signing']);
    } finally {
      await agent.close();
      await clientAgent.close();
      if (server.exitCode === null) server.kill('SIGTERM');
    }
    expect(await exited, output).toBe(0);
    expect(output).not.toContain(secret);
  });
});
