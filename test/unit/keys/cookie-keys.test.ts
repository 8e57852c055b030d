import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cookieKeysFile, initCookieKeys, loadCookieKeys, rotateCookieKeys } from '../../../src/keys/cookie-keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'custos-cookie-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cookie keys', () => {
  it('init writes one random key (mode 0600) and never replaces it', async () => {
    expect(await initCookieKeys(dir)).toBe(true);
    const first = await readFile(cookieKeysFile(dir), 'utf8');
    expect(JSON.parse(first)).toEqual([expect.stringMatching(/^[\w-]{43}$/)]);
    expect((await stat(cookieKeysFile(dir))).mode & 0o777).toBe(0o600);
    expect(await initCookieKeys(dir)).toBe(false);
    expect(await readFile(cookieKeysFile(dir), 'utf8')).toBe(first);
  });

  it('rotation prepends a new key and keeps the two before it', async () => {
    await initCookieKeys(dir);
    const [original] = await loadCookieKeys(dir, { generate: false });
    const second = await rotateCookieKeys(dir);
    expect(second).toHaveLength(2);
    expect(second[1]).toBe(original);
    await rotateCookieKeys(dir);
    const fourth = await rotateCookieKeys(dir);
    expect(fourth).toHaveLength(3);
    expect(fourth).not.toContain(original);
    expect(await loadCookieKeys(dir, { generate: false })).toEqual(fourth);
  });

  it('without generation a missing file is an error that says how to provide the keys', async () => {
    await expect(loadCookieKeys(dir, { generate: false })).rejects.toThrow(
      `cookie keys missing: set COOKIE_KEYS or create ${cookieKeysFile(dir)} with \`custos keys init\``,
    );
    await expect(rotateCookieKeys(dir)).rejects.toThrow('run `custos keys init` first');
  });

  it('COOKIE_KEYS wins over the file; development generates a missing file', async () => {
    expect(await loadCookieKeys(dir, { fromEnv: ['e'.repeat(32)], generate: true })).toEqual(['e'.repeat(32)]);
    await expect(stat(cookieKeysFile(dir))).rejects.toMatchObject({ code: 'ENOENT' });
    const generated = await loadCookieKeys(dir, { generate: true });
    expect(await loadCookieKeys(dir, { generate: false })).toEqual(generated);
  });

  it('a malformed file is refused, naming it, without echoing its content', async () => {
    await writeFile(cookieKeysFile(dir), JSON.stringify(['short-secret']));
    const error = await loadCookieKeys(dir, { generate: true }).catch((thrown: Error) => thrown);
    expect(String(error)).toContain(`${cookieKeysFile(dir)}: expected a JSON array of cookie keys of at least 32 characters`);
    expect(String(error)).not.toContain('short-secret');
  });
});
