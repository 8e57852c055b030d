import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

let readme: string;
let work: string;
beforeAll(async () => {
  // The README and the guides it links (docs/api-developers.md holds the PKI commands).
  const guides = (await readdir(path.join(ROOT, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => path.join(ROOT, 'docs', name));
  readme = (await Promise.all([path.join(ROOT, 'README.md'), ...guides].map((file) => readFile(file, 'utf8')))).join('\n');
  work = await mkdtemp(path.join(tmpdir(), 'custos-readme-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The first ```sh block after `marker` in the README and its guides. */
function shBlockAfter(marker: string): string {
  const start = readme.indexOf(marker);
  expect(start, marker).toBeGreaterThanOrEqual(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  expect(block).not.toBeNull();
  return block![1]!;
}

describe('README and behaviour agree (issue 10 #11, #12)', () => {
  it('the PKI example leaves no private key where git would pick it up', async () => {
    // A checkout with the repository's .gitignore; the commands run exactly as written.
    await run('git', ['init', '-q', work]);
    await copyFile(path.join(ROOT, '.gitignore'), path.join(work, '.gitignore'));
    const script = shBlockAfter('PKI commands').replaceAll('npx custos', `node '${path.join(ROOT, 'bin/custos.js')}'`);
    await run('sh', ['-e', '-c', script], { cwd: work });

    const list = async (...args: string[]) =>
      (await run('git', ['ls-files', '--others', '--exclude-standard', ...args], { cwd: work })).stdout.split('\n').filter(Boolean);
    const ignored = await list('--ignored');
    // The example did write keys (otherwise the check below proves nothing) ...
    expect(ignored.filter((file) => /key\.pem$/.test(file)).length).toBeGreaterThanOrEqual(2);
    // ... and git sees none of them.
    for (const file of await list()) {
      expect(await readFile(path.join(work, file), 'utf8'), `${file} is not ignored`).not.toContain('PRIVATE KEY');
    }
  });

  it('documents the 16-character minimum that `clients hash-secret` enforces', async () => {
    const short = run(process.execPath, [path.join(ROOT, 'bin/custos.js'), 'clients', 'hash-secret'], { cwd: ROOT });
    short.child.stdin!.end('fifteen-chars!!\n');
    await expect(short).rejects.toMatchObject({ stderr: expect.stringContaining('at least 16 characters') });
    expect(readme).toMatch(/hash-secret`?,? which refuses secrets\s+shorter than 16 characters/);
  });

  it('does not promise a previous signing key before the first rotation', () => {
    expect(readme).not.toMatch(/always publishes `current`, `next` and `previous`/);
    expect(readme).toMatch(/from the first rotation on also `previous`/);
  });

  it('package.json describes only features that exist', async () => {
    const { description } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { description: string };
    // Each feature a description may name, and where its code lives.
    const features: Array<[RegExp, string]> = [
      [/certificate-bound|RFC 8705/i, 'src/oidc/mtls.ts'],
      [/token exchange|RFC 8693/i, 'src/grants/token-exchange'],
      [/JWKS|key rotation/i, 'src/keys/signing-keys.ts'],
      [/IAM events|Pulsar|CAEP|security event/i, 'src/events'],
      [/login|authorization code|BFF/i, 'src/signin/interactions.routes.ts'],
      [/admin API/i, 'src/iam/admin.routes.ts'],
    ];
    for (const [claim, where] of features) {
      if (claim.test(description)) expect(existsSync(path.join(ROOT, where)), `description claims ${claim} but ${where} does not exist`).toBe(true);
    }
  });
});
