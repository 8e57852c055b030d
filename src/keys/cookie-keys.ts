import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PRIVATE_KEY_MODE, readOptionalFile, writeFileAtomic } from '../pki/files.js';

/** Keys that sign oidc-provider's cookies: the first signs, every one verifies (rotation). */
export type CookieKeys = string[];

const MIN_LENGTH = 32;
/** Keys kept by {@link rotateCookieKeys}: the new one plus the two before it. */
const KEPT = 3;

/** `<keysDir>/cookie-keys.json`: a JSON array of keys, newest first. */
export function cookieKeysFile(keysDir: string): string {
  return path.join(keysDir, 'cookie-keys.json');
}

function generateCookieKey(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads the cookie keys file; `undefined` when it does not exist. */
export async function readCookieKeys(keysDir: string): Promise<CookieKeys | undefined> {
  const file = cookieKeysFile(keysDir);
  const text = await readOptionalFile(file);
  if (text === undefined) return undefined;
  let keys: unknown;
  try {
    keys = JSON.parse(text);
  } catch {
    keys = undefined;
  }
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((key) => typeof key === 'string' && key.length >= MIN_LENGTH)) {
    throw new Error(`${file}: expected a JSON array of cookie keys of at least ${MIN_LENGTH} characters`);
  }
  return keys as CookieKeys;
}

async function writeCookieKeys(keysDir: string, keys: CookieKeys): Promise<void> {
  await writeFileAtomic(cookieKeysFile(keysDir), `${JSON.stringify(keys)}\n`, PRIVATE_KEY_MODE);
}

/**
 * The cookie keys of a running server: `COOKIE_KEYS` when set, else the keys file. With
 * `generate` (development only) a missing file is created; otherwise it is an error.
 */
export async function loadCookieKeys(keysDir: string, options: { fromEnv?: CookieKeys; generate: boolean }): Promise<CookieKeys> {
  if (options.fromEnv) return options.fromEnv;
  const stored = await readCookieKeys(keysDir);
  if (stored) return stored;
  if (!options.generate) {
    throw new Error(`cookie keys missing: set COOKIE_KEYS or create ${cookieKeysFile(keysDir)} with \`custos keys init\``);
  }
  const keys = [generateCookieKey()];
  await writeCookieKeys(keysDir, keys);
  return keys;
}

/** Creates the cookie keys file; `false` when it already exists (it is never replaced). */
export async function initCookieKeys(keysDir: string): Promise<boolean> {
  if (await readCookieKeys(keysDir)) return false;
  await writeCookieKeys(keysDir, [generateCookieKey()]);
  return true;
}

/**
 * Prepends a new signing key and keeps the previous two, so cookies set before the rotation
 * stay valid while they live. Takes effect on restart.
 */
export async function rotateCookieKeys(keysDir: string): Promise<CookieKeys> {
  const stored = await readCookieKeys(keysDir);
  if (!stored) throw new Error(`${cookieKeysFile(keysDir)} does not exist; run \`custos keys init\` first`);
  const keys = [generateCookieKey(), ...stored].slice(0, KEPT);
  await writeCookieKeys(keysDir, keys);
  return keys;
}
