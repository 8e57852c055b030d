import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../helpers/database.js';
import { brokerUnavailable, testBroker } from '../../helpers/pulsar.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

// docs/event-consumers.md: the local broker (`npm run pulsar:standalone`'s script), Custos with the pulsar-ws sink and `npm run example:continuous-auth`.
describe.skipIf(brokerUnavailable)('the README example (npm run example:continuous-auth)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('the proxy admits a bound token, refuses it after a revocation event, admits a newer one', async () => {
    const broker = await testBroker();
    const { stdout } = await run('npx', ['tsx', 'examples/continuous-auth-proxy.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', PULSAR_WS_URL: broker.wsUrl },
      timeout: 120_000,
    });
    const [admitted, refused, newer] = stdout.split('\n== ').slice(1);
    expect(admitted).toContain('accepted: HTTP 200');
    expect(admitted).toContain('"user":"alice"');
    expect(refused).toMatch(/refused \d+ ms after the revocation committed: HTTP 401/);
    expect(refused).toContain('"code":"subject_revoked"');
    expect(newer).toContain('accepted: HTTP 200');
    expect(stdout).not.toContain('NOT OBSERVED');
  }, 180_000);
});
