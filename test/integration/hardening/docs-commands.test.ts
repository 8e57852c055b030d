/**
 * Issue 22 §7: every shell block of README.md and docs/*.md is run by a test as written, or names
 * the test that covers it (`<!-- tested by: <test file> -->` on the line above the block; that
 * test names the document). This file runs the blocks a running Custos can answer: the quick
 * start, the users and roles CLI, the revocation example and the token exchange command —
 * as written, with only the ports, the key directory and `npx custos` pointed at the test's own
 * instance.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_OPTIONS } from '../../../bench/options.js';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { spkiHash } from '../../helpers/browser.js';
import { loginForCode, newJar, redeemCode } from '../../helpers/code-flow.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
const DOCUMENTS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

interface ShellBlock {
  document: string;
  line: number;
  script: string;
  testedBy?: string;
}

function shellBlocks(document: string): ShellBlock[] {
  const lines = readFileSync(path.join(ROOT, document), 'utf8').split('\n');
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const end = lines.indexOf('```', i + 1);
    const marker = /^<!-- tested by: (\S+) -->$/.exec(lines[i - 1] ?? '');
    blocks.push({ document, line: i + 1, script: lines.slice(i + 1, end).join('\n'), testedBy: marker?.[1] });
    i = end;
  }
  return blocks;
}

const BLOCKS = DOCUMENTS.flatMap(shellBlocks);

/** The block of `document` whose script contains `needle`. */
function block(document: string, needle: string): string {
  const found = BLOCKS.find((candidate) => candidate.document === document && candidate.script.includes(needle));
  expect(found, `${document}: no sh block with ${needle}`).toBeDefined();
  return found!.script;
}

describe('every shell block names the test that runs or covers it', () => {
  it.each(BLOCKS.map((b) => [`${b.document}:${b.line}`, b] as const))('%s', (_where, b) => {
    expect(b.testedBy, `${b.document}:${b.line} has no <!-- tested by: ... --> line above it`).toBeDefined();
    const test = path.join(ROOT, b.testedBy!);
    expect(existsSync(test), `${b.testedBy} does not exist`).toBe(true);
    expect(readFileSync(test, 'utf8'), `${b.testedBy} does not name ${b.document}`).toContain(b.document);
  });
});

describe('commands that need no running Custos', () => {
  it('docs/operators.md signing keys: `custos keys init` then `keys rotate` (SIGHUP: core/serve-signals.test.ts)', async () => {
    const keysDir = await mkdtemp(path.join(tmpdir(), 'custos-docs-keys-'));
    try {
      const script = block('docs/operators.md', 'npx custos keys init')
        .split('\n')
        .filter((line) => line.startsWith('npx custos keys'))
        .join('\n')
        .replaceAll('npx custos', `node '${path.join(ROOT, 'bin/custos.js')}'`);
      const { stdout } = await run('sh', ['-e', '-c', script], { cwd: keysDir, env: { ...process.env, NODE_ENV: 'production', KEYS_DIR: keysDir } });
      expect(stdout).toMatch(/created current \S+ and next \S+/);
      expect(readdirSync(path.join(keysDir, 'signing')).sort()).toEqual(['current.jwk.json', 'next.jwk.json', 'previous.jwk.json']);
      expect(existsSync(path.join(ROOT, 'test/integration/core/serve-signals.test.ts'))).toBe(true);
    } finally {
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  it('docs/performance.md: every documented `npm run bench` line parses with the bench’s own flags', () => {
    const lines = block('docs/performance.md', 'npm run bench').split('\n').map((line) => line.replace(/#.*$/, '').trim());
    const benchLines = lines.filter((line) => line.startsWith('npm run bench'));
    expect(benchLines.length).toBeGreaterThan(3);
    for (const line of benchLines) {
      const args = line.replace(/^npm run bench( --)?/, '').split(/\s+/).filter(Boolean);
      expect(() => parseArgs({ args, options: BENCH_OPTIONS, strict: true }), line).not.toThrow();
    }
    for (const line of lines.filter((candidate) => candidate.startsWith('npx tsx '))) {
      expect(existsSync(path.join(ROOT, line.split(/\s+/)[2]!)), line).toBe(true);
    }
  });
});

describe('the documents’ commands, run as written against a running Custos', () => {
  let app: TestApp;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const PASSWORD = 'correct horse battery';

  beforeAll(async () => {
    app = await startTestApp();
    work = await mkdtemp(path.join(tmpdir(), 'custos-docs-'));
    const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
    await users.createRole({ name: 'orders-reader' }, { actor: 'cli', initiatingEntity: 'admin' });
    await users.create({ username: 'dora', password: PASSWORD, roles: ['orders-reader'] }, { actor: 'cli', initiatingEntity: 'admin' });
    env = { ...process.env, NODE_ENV: 'test', PORT: String(app.custos.port), KEYS_DIR: app.keysDir, DATABASE_URL: app.databaseUrl, CONFIG_DIR: app.configDir };
  });
  afterAll(async () => {
    await app?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs a documented block with `sh -e`, pointed at this test's instance. */
  async function sh(script: string, extraEnv: Record<string, string> = {}) {
    const pointed = script
      .replaceAll('https://localhost:8443', app.issuer)
      .replaceAll('https://localhost:9443', `https://localhost:${app.custos.adminPort}`)
      .replaceAll('keys/dev/', `${app.keysDir}/`)
      .replaceAll('npx custos', `node '${path.join(ROOT, 'bin/custos.js')}'`);
    return run('sh', ['-e', '-c', pointed], { cwd: work, env: { ...env, ...extraEnv } });
  }

  it('README.md quick start: discovery, a secret client and an mTLS client get tokens', async () => {
    const { stdout } = await sh(block('README.md', 'grant_type=client_credentials'));
    expect(stdout).toContain(`"issuer":"${app.issuer}"`);
    expect(stdout.match(/"access_token":"/g)).toHaveLength(2);
  });

  it('README.md trusting the development CA: the pinned-profile command pins the server key', async () => {
    const command = block('README.md', '--ignore-certificate-errors-spki-list');
    const pipeline = /spki-list=\$\((.*)\) /.exec(command)?.[1];
    expect(pipeline).toBeDefined();
    const { stdout } = await sh(pipeline!);
    expect(stdout.trim()).toBe(spkiHash(app.custos.tls.certPem));
  });

  it('docs/administrators.md users and roles CLI', async () => {
    const { stderr } = await sh(block('docs/administrators.md', 'npx custos users create'));
    expect(stderr).not.toMatch(/error|at .*\.ts:\d+/i);
    const bob = await app.custos.db.selectFrom('iam_user').select(['username', 'disabled']).where('username', '=', 'bob').executeTakeFirstOrThrow();
    expect(bob).toEqual({ username: 'bob', disabled: false });
    // Ten CLI processes one after another (each a Node start with tsx): slow on busy cores.
  }, 120_000);

  it('docs/administrators.md revoking a user through the admin API', async () => {
    const { stdout } = await sh(block('docs/administrators.md', '/sessions'));
    expect(JSON.parse(stdout)).toMatchObject({ sessions_revoked: 0, grants_revoked: 0, backchannel_logout: { sent: 0, failed: 0 } });
  });

  it('docs/api-developers.md token exchange with the user access token of a real sign-in', async () => {
    const tokens = await redeemCode(app, await loginForCode(app, newJar(), 'dora', PASSWORD));
    expect(tokens.status).toBe(200);
    const { stdout } = await sh(block('docs/api-developers.md', 'subject_token="$USER_ACCESS_TOKEN"'), { USER_ACCESS_TOKEN: tokens.body.access_token });
    expect(JSON.parse(stdout)).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'resume_orders' });
  });
});
