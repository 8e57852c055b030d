import path from 'node:path';
import { PRIVATE_KEY_MODE, readOptionalFile, writeFileAtomic } from '../pki/files.js';
import { NodeEs256SigningKey } from './node-signing-key.js';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, type JWK, type JWTVerifyGetKey } from 'jose';

/** An ES256 private signing key as a JWK with explicit `kid` (RFC 7517, RFC 7638 thumbprint). */
export type SigningJwk = JWK & { kid: string; kty: 'EC'; crv: 'P-256'; d: string; alg: 'ES256'; use: 'sig' };

/**
 * The staged signing keys: `current` signs; `next` is published ahead of becoming current;
 * `previous` stays published so tokens it signed keep verifying until they expire.
 */
export interface SigningKeySet {
  previous?: SigningJwk;
  current: SigningJwk;
  next: SigningJwk;
}

const STAGES = ['previous', 'current', 'next'] as const;

/** Generates a fresh ES256 key whose `kid` is its RFC 7638 thumbprint. */
export async function generateSigningKey(): Promise<SigningJwk> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg: 'ES256', use: 'sig' } as SigningJwk;
}

function fileOf(dir: string, stage: (typeof STAGES)[number]): string {
  return path.join(dir, 'signing', `${stage}.jwk.json`);
}

async function readKey(file: string): Promise<SigningJwk | undefined> {
  const text = await readOptionalFile(file);
  if (text === undefined) return undefined;
  const jwk = JSON.parse(text) as Partial<SigningJwk>;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string' || !jwk.kid) {
    throw new Error(`${file}: expected an ES256 private JWK (kty EC, crv P-256, d, kid)`);
  }
  return { ...jwk, alg: 'ES256', use: 'sig' } as SigningJwk;
}

async function writeKey(file: string, jwk: SigningJwk): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(jwk, null, 2)}\n`, PRIVATE_KEY_MODE);
}

/**
 * Loads the staged keys from `<dir>/signing/{previous,current,next}.jwk.json`.
 * With `generate` (development only) missing `current`/`next` keys are created;
 * otherwise a missing key is an error.
 */
export async function loadSigningKeys(dir: string, options: { generate: boolean }): Promise<SigningKeySet> {
  const [previous, current, next] = await Promise.all(STAGES.map((stage) => readKey(fileOf(dir, stage))));
  if (current && next) return { previous, current, next };
  if (!options.generate) {
    throw new Error(
      `signing keys missing: ${fileOf(dir, current ? 'next' : 'current')} (provide them or run \`custos keys init\` / \`custos keys rotate\`)`,
    );
  }
  const set: SigningKeySet = { previous, current: current ?? (await generateSigningKey()), next: next ?? (await generateSigningKey()) };
  if (!current) await writeKey(fileOf(dir, 'current'), set.current);
  if (!next) await writeKey(fileOf(dir, 'next'), set.next);
  return set;
}

/** Creates `current` and `next` keys; refuses if keys already exist. */
export async function initSigningKeys(dir: string): Promise<SigningKeySet> {
  const existing = await readKey(fileOf(dir, 'current'));
  if (existing) throw new Error(`${fileOf(dir, 'current')} already exists; use \`custos keys rotate\``);
  return loadSigningKeys(dir, { generate: true });
}

/**
 * Rotation: next → current → previous, and a new `next`. The new current key was already
 * published as `next`, so no token is ever signed by a key resource servers have not seen.
 * Takes effect on restart or SIGHUP.
 */
export async function rotateSigningKeys(dir: string): Promise<SigningKeySet> {
  const set = await loadSigningKeys(dir, { generate: false });
  const rotated: SigningKeySet = { previous: set.current, current: set.next, next: await generateSigningKey() };
  await writeKey(fileOf(dir, 'next'), rotated.next);
  await writeKey(fileOf(dir, 'previous'), rotated.previous!);
  await writeKey(fileOf(dir, 'current'), rotated.current);
  return rotated;
}

/** Private keys in signing preference order (current first), for oidc-provider's `jwks`. */
export function providerJwks(set: SigningKeySet): { keys: SigningJwk[] } {
  return { keys: [set.current, set.next, ...(set.previous ? [set.previous] : [])] };
}

/**
 * oidc-provider `jwks.keys` (current first): each private JWK imported once into a
 * `node:crypto` signer (`features.externalSigningSupport`). Build once per key set.
 */
export function providerSigningKeys(set: SigningKeySet): { keys: NodeEs256SigningKey[] } {
  return { keys: providerJwks(set).keys.map((jwk) => new NodeEs256SigningKey(jwk)) };
}

/** The public JWK Set (RFC 7517 §5): current, next and previous public keys. */
export function publicJwks(set: SigningKeySet): { keys: JWK[] } {
  return {
    keys: providerJwks(set).keys.map(({ kty, crv, x, y, kid, alg, use }) => ({ kty, crv, x, y, kid, alg, use })),
  };
}

/** A jose key resolver over the public JWKS; build it once per key set (it caches imported keys). */
export function verificationKeys(set: SigningKeySet): JWTVerifyGetKey {
  return createLocalJWKSet(publicJwks(set));
}
