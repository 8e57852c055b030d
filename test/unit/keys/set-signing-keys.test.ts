import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSetSigningKeys, publicSetJwks, rotateSetSigningKeys, setKeyFile } from '../../../src/keys/set-signing-keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'custos-set-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SSF SET signing keys (RS256, CAEP Interoperability Profile §2.6)', () => {
  it('are generated only when allowed (development), as private files, 2048-bit RS256', async () => {
    await expect(loadSetSigningKeys(dir, { generate: false })).rejects.toThrow(/SSF SET signing keys missing: .*ssf-signing\/current\.jwk\.json/);
    const set = await loadSetSigningKeys(dir, { generate: true });
    expect(set.current).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(Buffer.from(set.current.n, 'base64url').length * 8).toBe(2048);
    expect((await stat(setKeyFile(dir, 'current'))).mode & 0o777).toBe(0o600);
    expect((await loadSetSigningKeys(dir, { generate: false })).current.kid).toBe(set.current.kid);
    expect(publicSetJwks(set).every((key) => !('d' in key) && key.kty === 'RSA')).toBe(true);
  });

  it('rotate: next → current → previous, a new next', async () => {
    const before = await loadSetSigningKeys(dir, { generate: true });
    const after = await rotateSetSigningKeys(dir);
    expect(after.previous?.kid).toBe(before.current.kid);
    expect(after.current.kid).toBe(before.next.kid);
    expect(publicSetJwks(after).map((key) => key.kid)).toEqual([after.current.kid, after.next.kid, before.current.kid]);
  });

  it('refuses a key under 2048 bits and a non-RSA key, naming the file', async () => {
    await mkdir(path.join(dir, 'ssf-signing'), { recursive: true });
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    await writeFile(setKeyFile(dir, 'current'), JSON.stringify({ ...small, kid: 'small' }));
    await expect(loadSetSigningKeys(dir, { generate: true })).rejects.toThrow(/current\.jwk\.json: the RSA key has 1024 bits; SETs need at least 2048/);
    await writeFile(setKeyFile(dir, 'current'), JSON.stringify({ kty: 'EC', crv: 'P-256', kid: 'ec', d: 'x', x: 'x', y: 'y' }));
    await expect(loadSetSigningKeys(dir, { generate: true })).rejects.toThrow(/current\.jwk\.json: expected an RS256 private JWK/);
  });
});
