import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  initSigningKeys,
  loadSigningKeys,
  providerJwks,
  publicJwks,
  rotateSigningKeys,
} from '../../../src/keys/signing-keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'custos-signing-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('signing keys', () => {
  it('generates current and next only when allowed, with thumbprint kids and private files', async () => {
    await expect(loadSigningKeys(dir, { generate: false })).rejects.toThrow(/signing keys missing: .*current\.jwk\.json/);
    const set = await loadSigningKeys(dir, { generate: true });
    expect(set.previous).toBeUndefined();
    expect(set.current.kid).not.toBe(set.next.kid);
    const { d: _d, kid, alg: _alg, use: _use, ...publicPart } = set.current;
    expect(kid).toBe(await calculateJwkThumbprint(publicPart, 'sha256'));
    expect((await stat(path.join(dir, 'signing', 'current.jwk.json'))).mode & 0o777).toBe(0o600);
    expect(await loadSigningKeys(dir, { generate: false })).toEqual(set);
    await expect(initSigningKeys(dir)).rejects.toThrow(/already exists/);
  });

  it('rotates next → current → previous and publishes all three without private parts', async () => {
    const before = await loadSigningKeys(dir, { generate: true });
    const after = await rotateSigningKeys(dir);
    expect(after.current).toEqual(before.next);
    expect(after.previous).toEqual(before.current);
    expect(after.next.kid).not.toBe(before.next.kid);
    expect(providerJwks(after).keys.map((k) => k.kid)).toEqual([after.current.kid, after.next.kid, after.previous!.kid]);
    for (const key of publicJwks(after).keys) expect(key.d).toBeUndefined();
    expect(await loadSigningKeys(dir, { generate: false })).toEqual(after);
  });

  it('refuses a key file that is not an ES256 private JWK', async () => {
    await loadSigningKeys(dir, { generate: true });
    const file = path.join(dir, 'signing', 'current.jwk.json');
    const jwk = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...jwk, d: undefined }));
    await expect(loadSigningKeys(dir, { generate: true })).rejects.toThrow(/current\.jwk\.json: expected an ES256 private JWK/);
    await writeFile(file, JSON.stringify({ ...jwk, crv: 'P-384' }));
    await expect(loadSigningKeys(dir, { generate: false })).rejects.toThrow(/expected an ES256 private JWK/);
  });
});
