import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { DEMO } from '../../helpers/app.js';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

interface Served {
  child: ChildProcess;
  issuer: string;
  keysDir: string;
  agent: Agent;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** Runs `custos serve` as its own Node process (the real CLI, real signals) on a fresh database. */
async function serve(): Promise<Served> {
  const database = await createTestDatabase();
  const work = await mkdtemp(path.join(tmpdir(), 'custos-serve-'));
  const keysDir = path.join(work, 'keys');
  const configDir = path.join(work, 'config');
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  // One process (no npx/tsx wrapper in between), so signals reach the server itself.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/custos.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? work,
      NODE_ENV: 'test',
      PORT: '0',
      ADMIN_PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      KEYS_DIR: keysDir,
      CONFIG_DIR: configDir,
      DATA_DIR: path.join(work, 'data'),
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let agent: Agent | undefined;
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await agent?.close().catch(() => {});
    await database.drop();
    await rm(work, { recursive: true, force: true });
  });

  const deadline = Date.now() + 20_000;
  let match: RegExpExecArray | null = null;
  while (!(match = /Custos is running at (https:\/\/\S+)/.exec(output))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`custos serve did not start:\n${output}`);
    await sleep(50);
  }
  agent = new Agent({ connect: { ca: await readFile(path.join(keysDir, 'ca.pem'), 'utf8') } });
  return { child, issuer: match[1]!, keysDir, agent, output: () => output, exited };
}

async function kids(served: Served): Promise<string[]> {
  const response = await request(`${served.issuer}/jwks`, { dispatcher: served.agent });
  const body = (await response.body.json()) as { keys: Array<{ kid: string }> };
  return body.keys.map((key) => key.kid);
}

describe('custos serve: signals', () => {
  it('SIGHUP reloads rotated signing keys and keeps serving', async () => {
    const served = await serve();
    const before = await kids(served);
    expect(before).toHaveLength(2);

    const rotated = await rotateSigningKeys(served.keysDir);
    served.child.kill('SIGHUP');

    const deadline = Date.now() + 5_000;
    let after = before;
    while (Date.now() < deadline && served.child.exitCode === null && served.child.signalCode === null) {
      after = await kids(served).catch(() => after);
      if (after.length === 3) break;
      await sleep(50);
    }
    expect(served.child.exitCode, `process exited on SIGHUP:\n${served.output()}`).toBeNull();
    expect(served.child.signalCode).toBeNull();
    expect(after).toEqual([rotated.current.kid, rotated.next.kid, rotated.previous!.kid]);
    expect(served.output()).toContain('signing keys reloaded');
  });

  it('SIGTERM lets an in-flight request finish, then exits with code 0', async () => {
    const served = await serve();
    expect(await kids(served)).toHaveLength(2);

    // A token request whose body is still arriving when the signal comes.
    const body = new PassThrough();
    body.on('error', () => {}); // undici destroys the body stream if the connection is cut; the reply assertion reports it
    const inFlight = request(`${served.issuer}/token`, {
      method: 'POST',
      dispatcher: served.agent,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(DEMO.reportingJob.join(':')).toString('base64')}`,
      },
      body,
    })
      .then(async (response) => ({ status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> }))
      .catch((error: Error) => ({ status: 0, json: { error: error.message } as Record<string, unknown> }));
    body.write('grant_type=client_credentials');
    await sleep(200);

    served.child.kill('SIGTERM');
    await sleep(200);
    body.end('&scope=orders%3Aread');

    const reply = await inFlight;
    expect(reply.status, JSON.stringify(reply.json)).toBe(200);
    expect(reply.json.access_token).toEqual(expect.any(String));
    // Let go of the keep-alive connection so shutdown does not wait for it.
    await served.agent.close();
    const { code, signal } = await served.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(served.output()).toContain('shutting down');
  });
});
