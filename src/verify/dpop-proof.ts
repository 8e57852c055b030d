import { createHash, createPublicKey, verify as verifySignature, type JsonWebKey, type KeyObject } from 'node:crypto';
import { VerifyError } from './errors.js';
import { timingSafeEqualAscii } from './jwt-core.js';

/** DPoP proof algorithms `custos/verify` can check (RFC 9449 §4.2 `alg`; never `none` or symmetric). */
export const DPOP_PROOF_ALGORITHMS = ['ES256', 'EdDSA'] as const;
/** One of {@link DPOP_PROOF_ALGORITHMS}. */
export type DpopProofAlgorithm = (typeof DPOP_PROOF_ALGORITHMS)[number];

/**
 * Remembers DPoP proof `jti`s (RFC 9449 §11.1) so a proof is accepted once. Resource servers with
 * several instances pass a shared one (e.g. Redis `SET key 1 NX EXAT expiresAt`).
 */
export interface DpopReplayStore {
  /**
   * Records `key` until `expiresAt` (seconds since the epoch) and answers true, or answers false
   * when it is already recorded (a replay) or cannot be recorded (refuse rather than forget).
   */
  useOnce(key: string, expiresAt: number): boolean | Promise<boolean>;
}

/**
 * An in-memory {@link DpopReplayStore} for one process, holding at most `maxEntries` unexpired
 * `jti`s (default 100 000). When full of unexpired entries it refuses new proofs (`dpop_replay`)
 * instead of forgetting one that could then be replayed.
 */
export function createMemoryDpopReplayStore(options: { maxEntries?: number } = {}): DpopReplayStore {
  const max = options.maxEntries ?? 100_000;
  const seen = new Map<string, number>();
  const purge = (now: number) => {
    for (const [key, expiresAt] of seen) if (expiresAt <= now) seen.delete(key);
  };
  return {
    useOnce(key, expiresAt) {
      const now = Math.floor(Date.now() / 1000);
      const known = seen.get(key);
      if (known !== undefined && known > now) return false;
      if (seen.size >= max) purge(now);
      if (seen.size >= max) return false;
      seen.set(key, expiresAt);
      return true;
    },
  };
}

/** Server-provided nonces at the resource server (RFC 9449 §9). */
export interface DpopNonceOptions {
  /** Whether every proof must carry a nonce. Default `true` when nonces are configured. */
  required?: boolean;
  /** Whether `nonce` is one this resource server issued and still accepts. */
  check(nonce: string): boolean | Promise<boolean>;
  /** The nonce to send next (the `DPoP-Nonce` header of a `use_dpop_nonce` answer). */
  next(): string;
}

/** Options of DPoP proof checking, given once to the verifier. */
export interface DpopVerifierOptions {
  /** Proof algorithms accepted. Default `['ES256']`. */
  algorithms?: readonly DpopProofAlgorithm[];
  /** How old (by `iat`) a proof may be, in seconds. Default 60. */
  maxAgeSec?: number;
  /** How far in the future a proof's `iat` may be (clock skew), in seconds. Default 5. */
  clockToleranceSec?: number;
  /** Where proof `jti`s are remembered. Default: {@link createMemoryDpopReplayStore}. */
  replayStore?: DpopReplayStore;
  /** Server nonces; without it, proofs are accepted without a nonce and a `nonce` claim is ignored. */
  nonce?: DpopNonceOptions;
}

/** The request a DPoP-bound token arrived with (RFC 9449 §7.1). */
export interface DpopRequest {
  /** The `DPoP` header value(s); more than one is refused (RFC 9449 §4.3 step 1). */
  proof: string | readonly string[] | undefined;
  /** The request method (`htm`), e.g. `GET`. */
  method: string;
  /** The request's full URL as the client addressed it (`htu`); query and fragment are ignored. */
  url: string | URL;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

function invalidProof(message: string, cause?: unknown): VerifyError {
  return new VerifyError('invalid_dpop_proof', message, cause === undefined ? {} : { cause });
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    if (!BASE64URL.test(segment)) throw new TypeError('not base64url');
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch (cause) {
    throw invalidProof(`${what} is not base64url-encoded JSON`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidProof(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** RFC 7638 §3.2 required members per key type, in lexicographic order. */
function thumbprintMembers(jwk: Record<string, unknown>): Record<string, string> {
  const pick = (names: string[]) => {
    const out: Record<string, string> = {};
    for (const name of names) {
      const value = jwk[name];
      if (typeof value !== 'string' || value === '' || ((name === 'x' || name === 'y') && !BASE64URL.test(value))) {
        throw invalidProof(`"jwk.${name}" is missing or malformed`);
      }
      out[name] = value;
    }
    return out;
  };
  if (jwk.kty === 'EC') return pick(['crv', 'kty', 'x', 'y']);
  if (jwk.kty === 'OKP') return pick(['crv', 'kty', 'x']);
  throw invalidProof('"jwk" must be an EC or OKP public key');
}

/** RFC 7638 JWK SHA-256 thumbprint, base64url (what `cnf.jkt` holds, RFC 9449 §6.1). */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(thumbprintMembers(jwk))).digest('base64url');
}

/** The proof's public key for `alg`: EC P-256 for ES256, OKP Ed25519 for EdDSA; never a private key. */
function proofKey(alg: DpopProofAlgorithm, jwk: Record<string, unknown>): KeyObject {
  if ('d' in jwk || 'k' in jwk || 'p' in jwk) throw invalidProof('"jwk" must be a public key');
  if (alg === 'ES256' && (jwk.kty !== 'EC' || jwk.crv !== 'P-256')) throw invalidProof('ES256 proofs need an EC P-256 "jwk"');
  if (alg === 'EdDSA' && (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519')) throw invalidProof('EdDSA proofs need an OKP Ed25519 "jwk"');
  const members = thumbprintMembers(jwk);
  try {
    return createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    throw invalidProof('"jwk" is not a valid public key', cause);
  }
}

/** `htu` comparison (RFC 9449 §4.3 step 9): scheme, host, port and path, without query and fragment. */
function sameTarget(htu: string, url: string | URL): boolean {
  const actual = URL.parse(htu);
  const expected = URL.parse(String(url));
  if (!actual || !expected) return false;
  for (const value of [actual, expected]) {
    value.search = '';
    value.hash = '';
  }
  return actual.href === expected.href;
}

/** A DPoP proof checked by {@link createDpopProofChecker}. */
export interface CheckedDpopProof {
  /** RFC 7638 thumbprint of the proof's key (equal to the token's `cnf.jkt`). */
  jkt: string;
  jti: string;
  iat: number;
}

/** Checks a DPoP proof for an access token bound to `expectedJkt` ({@link createDpopProofChecker}). */
export type DpopProofChecker = (request: DpopRequest, accessToken: string, expectedJkt: string) => Promise<CheckedDpopProof>;

/**
 * Builds the resource server's DPoP proof check (RFC 9449 §4.3 and §7.1), in order: exactly one
 * proof; a compact JWS with `typ` `dpop+jwt`, an allowed asymmetric `alg` and a public `jwk`
 * (no `crit`); its signature by that key; `htm` equal to the method; `htu` equal to the URL
 * without query and fragment; `iat` within `maxAgeSec` in the past (and `clockToleranceSec` in
 * the future); `ath` equal to base64url(SHA-256(access token)); the key's thumbprint equal to the
 * token's `cnf.jkt` (constant time); the nonce, when configured; and last the `jti`, which is
 * recorded so the proof cannot be used again. Throws {@link VerifyError}s: `dpop_proof_required`,
 * `invalid_dpop_proof`, `dpop_binding_mismatch`, `use_dpop_nonce`, `dpop_replay`.
 */
export function createDpopProofChecker(options: DpopVerifierOptions = {}): DpopProofChecker {
  const algorithms = new Set<string>(options.algorithms ?? ['ES256']);
  for (const alg of algorithms) {
    if (!(DPOP_PROOF_ALGORITHMS as readonly string[]).includes(alg)) throw new TypeError(`custos/verify: unsupported DPoP algorithm ${alg}`);
  }
  const maxAgeSec = options.maxAgeSec ?? 60;
  const toleranceSec = options.clockToleranceSec ?? 5;
  const replayStore = options.replayStore ?? createMemoryDpopReplayStore();
  const algs = [...algorithms];
  const nonce = options.nonce;

  // Every DPoP failure carries the accepted algorithms for its challenge (RFC 9449 §7.1 `algs`).
  return async function checkDpopProof(request, accessToken, expectedJkt) {
    try {
      return await check(request, accessToken, expectedJkt);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      throw new VerifyError(err.code, err.message, { cause: err.cause, dpopAlgorithms: algs, dpopNonce: err.dpopNonce });
    }
  };

  async function check(request: DpopRequest, accessToken: string, expectedJkt: string): Promise<CheckedDpopProof> {
    const values = typeof request.proof === 'string' ? [request.proof] : (request.proof ?? []);
    if (values.length === 0 || values[0] === '') throw new VerifyError('dpop_proof_required', 'token is DPoP-bound but no DPoP proof was presented');
    if (values.length > 1) throw invalidProof('more than one DPoP header');
    const proof = values[0]!;
    if (proof.length > MAX_PROOF_LENGTH) throw invalidProof('DPoP proof is too large');

    const parts = proof.split('.');
    if (parts.length !== 3) throw invalidProof('DPoP proof is not a compact JWS');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeSegment(headerPart, 'DPoP proof header');
    if (header.typ !== 'dpop+jwt') throw invalidProof('"typ" must be dpop+jwt');
    if (typeof header.alg !== 'string' || !algorithms.has(header.alg)) throw invalidProof('"alg" is not an accepted DPoP algorithm');
    if (header.crit !== undefined) throw invalidProof('"crit" is not supported');
    if (typeof header.jwk !== 'object' || header.jwk === null || Array.isArray(header.jwk)) throw invalidProof('"jwk" header is required');
    const jwk = header.jwk as Record<string, unknown>;
    const alg = header.alg as DpopProofAlgorithm;
    const key = proofKey(alg, jwk);

    if (!BASE64URL.test(signaturePart)) throw invalidProof('signature is not base64url');
    const signature = Buffer.from(signaturePart, 'base64url');
    const data = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
    const valid =
      alg === 'ES256'
        ? signature.length === 64 && verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
        : verifySignature(null, data, key, signature);
    if (!valid) throw invalidProof('DPoP proof signature is invalid');

    const payload = decodeSegment(payloadPart, 'DPoP proof claims');
    const { jti, htm, htu, iat, ath } = payload;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw invalidProof('"jti" must be a non-empty string');
    if (htm !== request.method) throw invalidProof('"htm" does not match the request method');
    if (typeof htu !== 'string' || !sameTarget(htu, request.url)) throw invalidProof('"htu" does not match the request URL');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('"iat" must be a number');
    const now = Math.floor(Date.now() / 1000);
    if (iat > now + toleranceSec || iat < now - maxAgeSec) throw invalidProof('"iat" is outside the accepted window');
    const expectedAth = createHash('sha256').update(accessToken, 'ascii').digest('base64url');
    if (typeof ath !== 'string' || !timingSafeEqualAscii(ath, expectedAth)) throw invalidProof('"ath" does not match the access token');

    const jkt = jwkThumbprint(jwk);
    if (!timingSafeEqualAscii(jkt, expectedJkt)) {
      throw new VerifyError('dpop_binding_mismatch', 'the DPoP proof key is not the key the token is bound to');
    }

    if (nonce !== undefined) {
      const presented = payload.nonce;
      if (presented === undefined ? nonce.required !== false : typeof presented !== 'string' || !(await nonce.check(presented))) {
        throw new VerifyError('use_dpop_nonce', 'a fresh DPoP nonce is required', { dpopNonce: nonce.next() });
      }
    }

    if (!(await replayStore.useOnce(`${jkt}:${jti}`, iat + maxAgeSec + toleranceSec))) {
      throw new VerifyError('dpop_replay', 'DPoP proof jti was already used');
    }
    return { jkt, jti, iat };
  }
}
