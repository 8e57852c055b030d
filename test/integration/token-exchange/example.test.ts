import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
let database: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

// docs/api-developers.md, "Token exchange for events": `npm run example:token-exchange`.
describe('the README example (npm run example:token-exchange)', () => {
  it('runs end to end: exchange over mTLS, consumer verification, edited payload refused', async () => {
    const { stdout } = await run('npx', ['tsx', 'examples/token-exchange.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: '0', ADMIN_PORT: '0', LOG_LEVEL: 'silent' },
      timeout: 60_000,
    });
    expect(stdout).toContain('token exchange response (HTTP 200)');
    expect(stdout).toContain('"scope": "resume_orders"');
    expect(stdout).toContain('consumer verified the event token');
    expect(stdout).toMatch(/edited payload is refused\npayload_mismatch/);
  });
});
