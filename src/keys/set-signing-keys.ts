import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { PRIVATE_KEY_MODE, readOptionalFile, writeFileAtomic } from '../pki/files.js';

/**
 * The RS256 keys that sign Shared Signals SETs, and only those (CAEP Interoperability Profile 1.0
 * §2.6 "Event Signatures": all events MUST be signed with RS256, keys of at least 2048 bits).
 * Tokens and Pulsar SETs stay ES256 with the keys of signing-keys.ts. Staged like those:
 * `current` signs, `next` is published ahead, `previous` stays published; files
 * `<keys>/ssf-signing/{previous,current,next}.jwk.json`.
 */
export type SetSigningJwk = JWK & { kid: string; kty: 'RSA'; n: string; e: string; d: string; alg: 'RS256'; use: 'sig' };

export interface SetSigningKeySet {
  previous?: SetSigningJwk;
  current: SetSigningJwk;
  next: SetSigningJwk;
}

const STAGES = ['previous', 'current', 'next'] as const;
const MIN_BITS = 2048;

export function setKeyFile(dir: string, stage: (typeof STAGES)[number]): string {
  return path.join(dir, 'ssf-signing', `${stage}.jwk.json`);
}

/** A fresh 2048-bit RS256 key whose `kid` is its RFC 7638 thumbprint. */
export async function generateSetSigningKey(): Promise<SetSigningJwk> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: MIN_BITS, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' } as SetSigningJwk;
}

async function readKey(file: string): Promise<SetSigningJwk | undefined> {
  const text = await readOptionalFile(file);
  if (text === undefined) return undefined;
  const jwk = JSON.parse(text) as Partial<SetSigningJwk>;
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string' || !jwk.kid) {
    throw new Error(`${file}: expected an RS256 private JWK (kty RSA, n, e, d, kid)`);
  }
  const bits = createPrivateKey({ key: jwk as JWK, format: 'jwk' }).asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_BITS) throw new Error(`${file}: the RSA key has ${bits} bits; SETs need at least ${MIN_BITS} (CAEP Interoperability Profile §2.6)`);
  return { ...jwk, alg: 'RS256', use: 'sig' } as SetSigningJwk;
}

async function writeKey(file: string, jwk: SetSigningJwk): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(jwk, null, 2)}\n`, PRIVATE_KEY_MODE);
}

/** Loads the staged SET keys; with `generate` (development only) missing `current`/`next` are created, otherwise missing is an error. */
export async function loadSetSigningKeys(dir: string, options: { generate: boolean }): Promise<SetSigningKeySet> {
  const [previous, current, next] = await Promise.all(STAGES.map((stage) => readKey(setKeyFile(dir, stage))));
  if (current && next) return { previous, current, next };
  if (!options.generate) {
    throw new Error(`SSF SET signing keys missing: ${setKeyFile(dir, current ? 'next' : 'current')} (run \`custos keys init\`)`);
  }
  const set: SetSigningKeySet = { previous, current: current ?? (await generateSetSigningKey()), next: next ?? (await generateSetSigningKey()) };
  if (!current) await writeKey(setKeyFile(dir, 'current'), set.current);
  if (!next) await writeKey(setKeyFile(dir, 'next'), set.next);
  return set;
}

/** next → current → previous and a new next, as for the ES256 keys; applied on restart or SIGHUP. */
export async function rotateSetSigningKeys(dir: string): Promise<SetSigningKeySet> {
  const set = await loadSetSigningKeys(dir, { generate: false });
  const rotated: SetSigningKeySet = { previous: set.current, current: set.next, next: await generateSetSigningKey() };
  await writeKey(setKeyFile(dir, 'next'), rotated.next);
  await writeKey(setKeyFile(dir, 'previous'), rotated.previous!);
  await writeKey(setKeyFile(dir, 'current'), rotated.current);
  return rotated;
}

/** The public JWKs of the set (current, next, previous). */
export function publicSetJwks(set: SetSigningKeySet): JWK[] {
  return [set.current, set.next, ...(set.previous ? [set.previous] : [])].map(({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use }));
}

/** RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) with one imported private key, synchronous. */
export class NodeRs256SigningKey {
  readonly #key: KeyObject;
  constructor(readonly jwk: SetSigningJwk) {
    this.#key = createPrivateKey({ key: jwk as JWK, format: 'jwk' });
  }
  get kid(): string {
    return this.jwk.kid;
  }
  sign(data: Uint8Array): Uint8Array {
    return sign('sha256', data, this.#key);
  }
}
