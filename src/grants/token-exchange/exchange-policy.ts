import { errors } from 'oidc-provider';
import type { ExchangePolicy } from '../../config/files.js';
import { assertResourceAcr } from '../../signin/resource-acr.js';
import type { Acr } from '../../verify/acr.js';
import type { SubjectToken } from './subject-token.js';

export const RESUME_PREFIX = 'resume_';

/** `invalid_scope` whose body carries only the description (no echoed `scope` member). */
function invalidScope(description: string) {
  return new errors.InvalidScope(description, undefined as never);
}

/** Whether every scope of a non-empty list is a resume scope: the token is for events only. */
export function isResumeOnly(scopes: readonly string[]): boolean {
  return scopes.length > 0 && scopes.every((scope) => scope.startsWith(RESUME_PREFIX));
}

/** The decision for one exchange: what the new token may carry. */
export interface ExchangeDecision {
  scopes: string[];
  audiences: string[];
  lifetime: number;
}

export interface ExchangeRequest {
  clientId: string;
  /** Resources this client serves (config `serves`). */
  serves: readonly string[];
  requestedScopes: string[] | undefined;
  requestedAudiences: string[];
  subject: SubjectToken;
  now: number;
  /** The minimum sign-in (`acr`) of a resource server (its `require_mfa` / `minimum_acr`); absent: none has one. */
  minimumAcr?: (resource: string) => Acr | undefined;
}

/**
 * Applies the token exchange profile (DESIGN.md, RFC 8693 §2.2.2 errors):
 * - the subject token's audience must be an API the client serves (`invalid_request`);
 * - only `resume_*` scopes, each allowed by the client's policy (`invalid_scope`);
 * - from a user token, `resume_X` requires `X` in the subject token; from a resume token
 *   (chained exchange), a subset of its resume scopes (`invalid_scope`);
 * - audiences from the policy, or its default (`invalid_target`);
 * - lifetime: the shortest policy lifetime of the granted scopes, never past a resume
 *   subject token's own expiry;
 * - a DPoP-bound subject token (`cnf.jkt`, RFC 9449 §6.1) only when the client's policy sets
 *   `accept_dpop_bound_subject_tokens` (`invalid_request`): the exchanging service never holds
 *   the user's client's DPoP key, so exchanging such a token moves it out of its binding, which
 *   the operator allows per client. The resume token is bound like any of that client's.
 */
export function decideExchange(policy: ExchangePolicy | undefined, request: ExchangeRequest): ExchangeDecision {
  const { subject } = request;
  if (!policy) throw new errors.UnauthorizedClient('no token exchange policy allows this client to mint resume tokens');
  if (subject.jkt !== undefined && policy.accept_dpop_bound_subject_tokens !== true) {
    throw new errors.InvalidRequest('subject_token is DPoP-bound and this client may not exchange DPoP-bound tokens');
  }
  if (!subject.aud.some((aud) => request.serves.includes(aud))) {
    throw new errors.InvalidRequest('subject_token was not issued for an API this client serves');
  }
  if (subject.sub === subject.clientId && !subject.act) {
    throw new errors.InvalidRequest('subject_token does not represent a user');
  }
  const chained = isResumeOnly(subject.scopes);
  if (!chained && subject.eventPayloadHash !== undefined) {
    throw new errors.InvalidRequest('subject_token is malformed');
  }
  const baseScopes = new Set(subject.scopes);
  const eligible = (scope: string) =>
    chained ? baseScopes.has(scope) : baseScopes.has(scope.slice(RESUME_PREFIX.length));

  let scopes: string[];
  if (request.requestedScopes && request.requestedScopes.length > 0) {
    scopes = [...new Set(request.requestedScopes)];
    for (const scope of scopes) {
      if (!scope.startsWith(RESUME_PREFIX) || scope.length === RESUME_PREFIX.length) {
        throw invalidScope(`only resume_* scopes can be requested (got ${scope})`);
      }
      if (!policy.scopes[scope]) throw invalidScope(`this client may not mint ${scope}`);
      if (!eligible(scope)) {
        throw invalidScope(
          chained
            ? `${scope} is not in the subject token (a chained exchange can only narrow its scopes)`
            : `${scope} requires scope ${scope.slice(RESUME_PREFIX.length)} in the subject token`,
        );
      }
    }
  } else {
    scopes = Object.keys(policy.scopes).filter(eligible);
    if (scopes.length === 0) throw invalidScope('the subject token carries no scope this client may resume');
  }

  const audiences = request.requestedAudiences.length > 0 ? [...new Set(request.requestedAudiences)] : policy.default_audience ? [policy.default_audience] : [];
  if (audiences.length === 0) throw new errors.InvalidTarget('audience or resource is required: the policy names no default audience');
  for (const audience of audiences) {
    if (!policy.audiences.includes(audience)) throw new errors.InvalidTarget(`this client may not mint tokens for ${audience}`);
    if (request.minimumAcr) assertResourceAcr(audience, subject.authentication?.acr, request.minimumAcr);
  }

  let lifetime = Math.min(...scopes.map((scope) => policy.scopes[scope]!.lifetime));
  if (chained) lifetime = Math.min(lifetime, subject.exp - request.now);
  if (lifetime <= 0) throw new errors.InvalidRequest('subject_token is expired');
  return { scopes, audiences, lifetime };
}
