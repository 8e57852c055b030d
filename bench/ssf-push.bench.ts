/**
 * Revocation → SET verified at an SSF push receiver (RFC 8935), p50/p99 (issue 17):
 *
 *   npm run bench:ssf                          # 1,000 revocations
 *   BENCH_REVOCATIONS=20 npm run bench:ssf     # a smoke run
 *
 * Starts Custos in-process (embedded PostgreSQL in a temp dir, no Pulsar) and a push receiver on
 * loopback: a plain `node:https` server whose certificate comes from a throwaway CA that Custos
 * trusts through SSF_PUSH_CA_FILE; it verifies each SET with `jose` against the served JWKS. The
 * receiver (demo client `ssf-receiver`) creates a push stream for `session-revoked`; then, one
 * after another, the admin API's DELETE /admin/users/{id}/sessions revokes a user's sessions and the
 * clock runs from the moment that request is sent to the receiver having verified the SET.
 * Printed beside the Pulsar figure of the same path (admin) from the latest
 * bench/results/*-revocation.json (`npm run bench:revocation`): a recorded run, not this one.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, request } from 'undici';
import { percentile } from './bench-broker.js';
import { createUserService } from '../src/iam/user.service.js';
import { createPasswordHasher } from '../src/iam/password-hasher.js';
import { startCustos } from '../src/main.js';
import { createCertificateAuthority } from '../src/pki/ca.js';
import { issueCertificate } from '../src/pki/issue.js';

const COUNT = Number(process.env.BENCH_REVOCATIONS ?? 1000);
const WARM_UP = 5;
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const RESULTS = path.resolve(import.meta.dirname, 'results');

const dataDir = await mkdtemp(path.join(tmpdir(), 'custos-bench-ssf-'));
await chmod(dataDir, 0o755); // initdb runs as an unprivileged user when the bench runs as root
const ca = await createCertificateAuthority({ commonName: 'Bench Receiver CA', validityDays: 1 });
const leaf = await issueCertificate(ca, { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server', validityDays: 1 });
await writeFile(path.join(dataDir, 'receiver-ca.pem'), ca.certificatePem);

const custos = await startCustos({
  env: {
    ...process.env,
    NODE_ENV: 'development',
    PORT: '0',
    ADMIN_PORT: '0',
    DATA_DIR: path.join(dataDir, 'pg'),
    KEYS_DIR: path.join(dataDir, 'keys'),
    EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54352',
    LOG_LEVEL: 'warn',
    EVENTS_SINK: 'none',
    SSF_PUSH_CA_FILE: path.join(dataDir, 'receiver-ca.pem'),
    SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
  },
}).catch(async (error: Error) => {
  console.error(`bench:ssf: Custos did not start: ${error.message}`);
  await rm(dataDir, { recursive: true, force: true });
  process.exit(1);
});

const withCert = (name: string) => {
  const cert = custos.devPki?.clients[name];
  if (!cert) throw new Error(`no dev certificate for ${name}`);
  return new Agent({ connect: { ca: custos.tls.clientCaPem, cert: cert.certPem, key: cert.keyPem } });
};
const receiverAgent = withCert('ssf-receiver');
const adminAgent = withCert('admin-cli');

async function token(agent: Agent, form: Record<string, string>): Promise<string> {
  const response = await request(`${custos.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    dispatcher: agent,
  });
  const body = (await response.body.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token for ${form.client_id}: ${response.statusCode} ${JSON.stringify(body)}`);
  return body.access_token;
}

// The receiver: verifies each pushed SET, resolves whoever waits for the next one.
const jwks = createLocalJWKSet((await request(`${custos.issuer}/ssf/jwks`, { dispatcher: receiverAgent }).then((r) => r.body.json())) as JSONWebKeySet);
let waiting: ((at: number) => void) | undefined;
const receiver = createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    jwtVerify(Buffer.concat(chunks).toString('utf8'), jwks, { issuer: custos.issuer, audience: 'ssf-receiver', typ: 'secevent+jwt' }).then(
      ({ payload }) => {
        const at = performance.now();
        res.writeHead(202).end();
        if ((payload.events as Record<string, unknown>)[SESSION_REVOKED]) {
          const resolve = waiting;
          waiting = undefined;
          resolve?.(at);
        }
      },
      () => res.writeHead(400, { 'content-type': 'application/json' }).end('{"err":"invalid_request"}'),
    );
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverPort = (receiver.address() as { port: number }).port;

/** The admin path's SET-at-Pulsar-consumer figure of the latest recorded `bench:revocation` run. */
function previousPulsarFigure(): Promise<unknown> {
  return readdir(RESULTS)
    .then((files) => files.filter((file) => file.endsWith('-revocation.json')).sort().at(-1))
    .then(async (file) => {
      if (!file) return 'no recorded Pulsar run (npm run bench:revocation)';
      const recorded = JSON.parse(await readFile(path.join(RESULTS, file), 'utf8')) as { paths?: { admin?: { event_at_consumer?: { p50_ms: number; p99_ms: number }; revocations?: number } } };
      const admin = recorded.paths?.admin;
      if (!admin?.event_at_consumer) return `${file}: no admin path`;
      return { file, revocations: admin.revocations, ...admin.event_at_consumer };
    });
}

try {
  const ssfToken = await token(receiverAgent, { grant_type: 'client_credentials', client_id: 'ssf-receiver', scope: 'ssf.manage', resource: 'urn:custos:ssf' });
  const created = await request(`${custos.issuer}/ssf/streams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ssfToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events_requested: [SESSION_REVOKED], delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: `https://localhost:${receiverPort}/events` } }),
    dispatcher: receiverAgent,
  });
  if (created.statusCode !== 201) throw new Error(`stream: ${created.statusCode} ${await created.body.text()}`);
  await created.body.dump();

  const users = createUserService({ db: custos.db, hasher: createPasswordHasher() });
  const user = await users.create({ username: `bench-ssf-${Date.now()}` }, { actor: 'cli', initiatingEntity: 'admin' });
  const adminToken = await token(adminAgent, { grant_type: 'client_credentials', client_id: 'admin-cli', scope: 'admin', resource: 'urn:custos:admin' });

  const toSet: number[] = [];
  const response: number[] = [];
  for (let i = 0; i < COUNT + WARM_UP; i += 1) {
    const arrival = new Promise<number>((resolve) => (waiting = resolve));
    const sent = performance.now();
    const revoked = await request(`https://localhost:${custos.adminPort}/admin/users/${user.id}/sessions`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminToken}` },
      dispatcher: adminAgent,
    });
    await revoked.body.dump();
    const answered = performance.now();
    if (revoked.statusCode >= 300) throw new Error(`revocation: ${revoked.statusCode}`);
    const received = await arrival;
    if (i < WARM_UP) continue;
    response.push(answered - sent);
    toSet.push(received - sent);
  }
  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50_ms: Number(percentile(sorted, 50).toFixed(2)), p99_ms: Number(percentile(sorted, 99).toFixed(2)), max_ms: Number(sorted.at(-1)!.toFixed(2)) };
  };
  console.log(
    JSON.stringify(
      {
        benchmark: 'admin DELETE /admin/users/{id}/sessions sent → its response, → SET verified at an SSF push receiver (RFC 8935, loopback)',
        revocations: COUNT,
        response: summary(response),
        set_at_push_receiver: summary(toSet),
        pulsar_admin_path_recorded: await previousPulsarFigure().catch((error: Error) => error.message),
      },
      null,
      2,
    ),
  );
} finally {
  receiver.closeAllConnections();
  receiver.close();
  await Promise.all([receiverAgent.close(), adminAgent.close()]);
  await custos.stop();
  await rm(dataDir, { recursive: true, force: true });
}
