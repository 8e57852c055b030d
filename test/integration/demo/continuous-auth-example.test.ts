import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

describe('npm run example:continuous-auth without a broker', () => {
  it('says so in one line, reports no outcome it did not see, and exits non-zero', async () => {
    const closed = await freePort();
    const outcome = await run(process.execPath, ['--import', 'tsx', 'examples/continuous-auth-proxy.ts'], {
      cwd: ROOT,
      env: { ...process.env, PULSAR_WS_URL: `ws://127.0.0.1:${closed}`, PORT: '0', ADMIN_PORT: '0', LOG_LEVEL: 'warn' },
      timeout: 60_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
    expect(outcome.code).toBe(1);
    expect(outcome.stdout).not.toMatch(/refused|accepted/);
    const lines = outcome.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^custos: continuous-auth-proxy: no Pulsar broker at ws:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); start one with `npm run pulsar:standalone`/);
    expect(outcome.stderr).not.toMatch(/\n\s+at /);
  }, 90_000);
});
