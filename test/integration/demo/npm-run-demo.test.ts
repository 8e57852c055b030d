/**
 * `npm run demo` for real: its entry as a child process on free ports (log-sink mode: the proxy
 * introspects; the broker mode is the same code with the event feed, see README.md `npm run demo`), driven in real
 * Chromium: sign in as alice, call the orders API (allowed), revoke my sessions, the next call
 * refused with the measured time; the token exchange command on the page works as pasted; SIGINT
 * stops everything (no process left that uses the demo's data directory, ports closed).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/free-port.js';
import { launchBrowser, type TestBrowser } from '../../helpers/browser.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHOTS = path.join(ROOT, '.tmp', 'demo-screenshots');
const run = promisify(execFile);

/** Processes whose command line mentions `needle` (postgres -D <dir>, java --metadata-dir <dir>, ...). */
async function processesMentioning(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ').slice(0, 160)}`);
  }
  return found;
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

describe('npm run demo', () => {
  let child: ChildProcess | undefined;
  let browser: TestBrowser | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('signs in, calls the orders API, revokes, sees the next call refused; SIGINT leaves nothing running', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'custos-demo-test-'));
    const bffPort = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, BFF_PORT: String(bffPort), DEMO_EVENTS: 'log', DEMO_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += String(chunk)));
    child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 90_000;
    while (!stdout.includes('DEMO READY')) {
      if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`demo not ready after 90 s: ${stdout} ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const bffUrl = /Demo BFF: +(http:\/\/localhost:\d+)/.exec(stdout)![1]!;
    expect(bffUrl).toBe(`http://localhost:${bffPort}`);
    const password = /Sign in as: +alice \/ (\S+)/.exec(stdout)![1]!;
    expect(stdout).toContain('IAM events: log sink (DEMO_EVENTS=log); the orders proxy introspects every token');

    browser = await launchBrowser({ trust: await readFile(path.join(ROOT, 'keys/dev/server.pem'), 'utf8') });
    const { page } = browser;
    await page.goto(bffUrl);
    await page.click('#login');
    await page.waitForURL(/\/interaction\//);
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', password);
    await page.screenshot({ path: path.join(SHOTS, '1-custos-sign-in.png'), fullPage: true });
    await Promise.all([page.waitForURL(`${bffUrl}/`), page.click('button[type=submit]:has-text("Sign in")')]);
    expect(await page.textContent('#user')).toContain('alice');
    const accessClaims = JSON.parse((await page.textContent('#access-claims'))!) as Record<string, unknown>;
    expect(accessClaims.aud).toBe('https://api.custos.test/orders');
    expect(accessClaims.scope).toContain('orders');
    await page.screenshot({ path: path.join(SHOTS, '2-signed-in.png'), fullPage: true });

    // The token exchange command, pasted as is into a shell at the repository root.
    const command = await page.inputValue('#exchange-command');
    expect(command).toMatch(/subject_token=eyJ/);
    const exchanged = JSON.parse((await run('sh', ['-c', command], { cwd: ROOT })).stdout) as Record<string, unknown>;
    expect(exchanged).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'resume_orders', token_type: 'Bearer' });

    await Promise.all([page.waitForURL(`${bffUrl}/`), page.click('#call-orders')]);
    expect(await page.textContent('#orders-status')).toMatch(/HTTP 200 allowed/);
    expect(await page.textContent('#orders-result')).toContain('o-1001');
    await page.screenshot({ path: path.join(SHOTS, '3-orders-allowed.png'), fullPage: true });

    await Promise.all([page.waitForURL(`${bffUrl}/`), page.click('#revoke-sessions')]);
    const revocation = (await page.textContent('#revocation-result'))!;
    expect(revocation).toMatch(/refused the old access token \d+ ms after the revocation was requested \(HTTP 401/);
    expect(await page.textContent('#revocation-summary')).toContain('"sessions_revoked": 1');
    await page.screenshot({ path: path.join(SHOTS, '4-revoked.png'), fullPage: true });

    await Promise.all([page.waitForURL(`${bffUrl}/`), page.click('#call-orders')]);
    expect(await page.textContent('#orders-status')).toMatch(/With the old \(revoked\) token: HTTP 401 refused/);
    await page.screenshot({ path: path.join(SHOTS, '5-next-call-refused.png'), fullPage: true });

    const custosPort = Number(/Custos: +https:\/\/localhost:(\d+)/.exec(stdout)![1]);
    expect(await processesMentioning(dataDir)).not.toEqual([]);
    const signalled = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // Ctrl-C with the browser still open (keep-alive connections): stopped promptly.
    expect(Date.now() - signalled).toBeLessThan(8000);
    expect(stdout).toContain('demo stopped');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(await processesMentioning(dataDir)).toEqual([]);
    expect(await portOpen(bffPort)).toBe(false);
    expect(await portOpen(custosPort)).toBe(false);
  }, 180_000);
});
