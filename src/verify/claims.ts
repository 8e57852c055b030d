import type { JWTPayload } from 'jose';
import { VerifyError } from './errors.js';

/** Prefix of the "meta-scopes" that only event tokens carry (DESIGN.md, token exchange profile). */
export const RESUME_SCOPE_PREFIX = 'resume_';

/**
 * The RFC 8693 §4.1 `act` (actor) claim: the party acting on behalf of `sub`,
 * nested when a token was exchanged more than once (outermost = current actor).
 */
export interface ActorClaim {
  sub: string;
  iss?: string;
  act?: ActorClaim;
  [claim: string]: unknown;
}

/** The RFC 7800 §3.1 `cnf` claim; Custos binds with RFC 8705 §3.1 `x5t#S256` or RFC 9449 §6.1 `jkt`. */
export interface ConfirmationClaim {
  'x5t#S256'?: string;
  jkt?: string;
  [member: string]: unknown;
}

/** Whether `scope` is a `resume_*` event scope. */
export function isResumeScope(scope: string): boolean {
  return scope.startsWith(RESUME_SCOPE_PREFIX) && scope.length > RESUME_SCOPE_PREFIX.length;
}

/** Claims shared by access and event tokens, checked for type after jose has verified the JWT. */
export interface CommonClaims {
  scope: string[];
}

/**
 * Checks the types of the optional claims both verifiers return (RFC 9068 §2.2,
 * RFC 8693 §4.1) and parses `scope` (RFC 6749 §3.3: space-delimited).
 */
export function checkCommonClaims(payload: JWTPayload): CommonClaims {
  for (const claim of ['sub', 'jti', 'client_id'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'string') {
      throw new VerifyError('invalid_token', `"${claim}" claim must be a string`);
    }
  }
  const { scope, act } = payload;
  if (scope !== undefined && typeof scope !== 'string') {
    throw new VerifyError('invalid_token', '"scope" claim must be a space-delimited string');
  }
  if (act !== undefined && !isActorClaim(act, 0)) {
    throw new VerifyError('invalid_token', '"act" claim must be an object with a string "sub"');
  }
  return { scope: parseScope(scope) };
}

function parseScope(scope: string | undefined): string[] {
  return scope === undefined ? [] : scope.split(' ').filter((token) => token !== '');
}

const MAX_ACTOR_DEPTH = 32;

function isActorClaim(value: unknown, depth: number): value is ActorClaim {
  if (depth >= MAX_ACTOR_DEPTH || typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const actor = value as Record<string, unknown>;
  if (typeof actor['sub'] !== 'string') return false;
  if (actor['iss'] !== undefined && typeof actor['iss'] !== 'string') return false;
  return actor['act'] === undefined || isActorClaim(actor['act'], depth + 1);
}
