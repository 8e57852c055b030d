import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadCookieKeys } from '../../../src/keys/cookie-keys.js';
import { loadSigningKeys, rotateSigningKeys } from '../../../src/keys/signing-keys.js';
import { ensureDevPki } from '../../../src/pki/dev-pki.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

/** Whether git's ignore rules (not the index) exclude `file`. */
async function ignored(file: string): Promise<boolean> {
  try {
    await run('git', ['check-ignore', '--quiet', '--no-index', file], { cwd: ROOT });
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 1) return false;
    throw error;
  }
}

describe('keys/ (issue 22 §11)', () => {
  it('ignores every piece of key material but ships keys/README.md', async () => {
    for (const file of [
      'keys/dev/ca.key.pem',
      'keys/dev/ca.pem',
      'keys/dev/server.key.pem',
      'keys/dev/clients/orders-api/key.pem',
      'keys/dev/signing/current.jwk.json',
      'keys/dev/cookie-keys.json',
      'keys/prod-ca/ca.key.pem',
      'keys/clients/orders-api/key.pem',
      'keys/anything-else.pem',
      'keys/dev/README.md',
    ]) {
      expect(await ignored(file), file).toBe(true);
    }
    expect(await ignored('keys/README.md')).toBe(false);
  });

  it('keys/README.md names every file the development bootstrap writes', async () => {
    const readme = await readFile(path.join(ROOT, 'keys/README.md'), 'utf8');
    const dir = await mkdtemp(path.join(tmpdir(), 'custos-keys-readme-'));
    try {
      // What `npm start` writes in development: the dev PKI, signing keys (rotated once, so
      // `previous` exists too) and cookie keys.
      await ensureDevPki({ dir, clients: ['orders-api'] });
      await loadSigningKeys(dir, { generate: true });
      await rotateSigningKeys(dir);
      await loadCookieKeys(dir, { generate: true });
      const written = (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
        .map((file) => file.replace(/^clients\/orders-api\//, 'clients/<name>/'))
        .sort();
      expect(written).toEqual(
        expect.arrayContaining(['ca.key.pem', 'ca.pem', 'clients/<name>/cert.pem', 'clients/<name>/key.pem', 'cookie-keys.json', 'server.key.pem', 'server.pem', 'signing/current.jwk.json']),
      );
      for (const file of written) expect(readme, file).toContain(`\`${file}\``);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
