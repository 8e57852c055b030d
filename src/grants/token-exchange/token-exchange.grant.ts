import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWTVerifyGetKey } from 'jose';
import type { ExchangePolicy } from '../../config/files.js';
import type { Database } from '../../db/database.js';
import { createStatementBatcher } from '../../db/statement-batcher.js';
import { assignTokenId, checkTokenRequestDpop } from '../../oidc/internals.js';
import { AUDIENCES_EXTRA } from '../../oidc/jwt-audiences.js';
import type { Acr } from '../../verify/acr.js';
import { isPayloadHash } from '../../verify/payload-hash.js';
import { decideExchange } from './exchange-policy.js';
import { recordExchangesUnlessRevoked, type ExchangeRecord } from './exchange-record.repository.js';
import { ACCESS_TOKEN_TYPE, createSubjectTokenValidator, JWT_TOKEN_TYPE, type ActClaim } from './subject-token.js';

/** RFC 8693 §2.1 grant type. */
export const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** Request parameters (RFC 8693 §2.1) plus the profile's `event_payload_hash`. */
export const parameters = [
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'scope',
  'resource',
  'audience',
  'actor_token',
  'actor_token_type',
  'event_payload_hash',
] as const;

/**
 * Exchange records are written in batches: a record goes at once when fewer than `maxInFlight`
 * statements run, else with the others waiting, up to `maxBatch` per statement.
 */
const RECORD_BATCHING = { maxBatch: 64, maxInFlight: 2 };

/** RFC 8693 §2.1 allows several `resource` and `audience` values; every other parameter once. */
export const allowedDuplicateParameters = ['resource', 'audience'] as const;

export interface TokenExchangeDeps {
  provider: Provider;
  db: Kysely<Database>;
  issuer: string;
  /** This server's current public keys, for verifying subject tokens. */
  verificationKeys: () => JWTVerifyGetKey;
  /** kid of the current signing key. */
  signingKid: () => string;
  policies: readonly ExchangePolicy[];
  serves: (clientId: string) => readonly string[];
  /** The minimum sign-in (`acr`) of a resource server, which the subject token must meet for it as audience. */
  minimumAcr?: (resource: string) => Acr | undefined;
}

type Params = Partial<Record<(typeof parameters)[number], string | string[]>> & { resource?: string | string[] };

function single(params: Params, name: keyof Params): string | undefined {
  const value = params[name];
  return Array.isArray(value) ? value[0] : value;
}

function list(params: Params, name: 'resource' | 'audience'): string[] {
  const value = params[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The token exchange handler: a user's access token (or a resume token, chained) plus the
 * hash of one event payload becomes a long-lived, resume-only token bound to that payload.
 */
export function createTokenExchangeHandler(deps: TokenExchangeDeps) {
  const policies = new Map(deps.policies.map((policy) => [policy.client_id, policy]));
  const validateSubjectToken = createSubjectTokenValidator({
    issuer: deps.issuer,
    verificationKeys: deps.verificationKeys,
    findAccessToken: (value) => deps.provider.AccessToken.find(value),
  });
  // Exchanges running at the same time share one statement (round trip, execution and commit).
  const recordExchange = createStatementBatcher<ExchangeRecord, boolean>((records) => recordExchangesUnlessRevoked(deps.db, records), RECORD_BATCHING);

  return async function tokenExchangeHandler(ctx: KoaContextWithOIDC): Promise<void> {
    const params = ctx.oidc.params as Params;
    const client = ctx.oidc.client!;

    const subjectToken = single(params, 'subject_token');
    const subjectTokenType = single(params, 'subject_token_type');
    if (!subjectToken) throw new errors.InvalidRequest('missing required parameter subject_token');
    if (subjectTokenType !== ACCESS_TOKEN_TYPE && subjectTokenType !== JWT_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    const requestedType = single(params, 'requested_token_type');
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (single(params, 'actor_token') !== undefined || single(params, 'actor_token_type') !== undefined) {
      throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
    }
    const eventPayloadHash = single(params, 'event_payload_hash');
    if (!eventPayloadHash) throw new errors.InvalidRequest('missing required parameter event_payload_hash');
    if (!isPayloadHash(eventPayloadHash)) {
      throw new errors.InvalidRequest('event_payload_hash must be the base64url SHA-256 of the JCS-canonical event payload');
    }

    // A proof is checked like at every other grant (and required of a dpop_bound_access_tokens
    // client), but the resume token stays a Bearer token: it travels with the event to consumers,
    // who never hold the exchanging client's key; its payload hash is what binds it.
    await checkTokenRequestDpop(ctx);

    const policy = policies.get(client.clientId);
    if (!policy) throw new errors.UnauthorizedClient('no token exchange policy allows this client to mint resume tokens');

    const subject = await validateSubjectToken(subjectToken);
    const scopeParam = single(params, 'scope');
    const now = Math.floor(Date.now() / 1000);
    const decision = decideExchange(policy, {
      clientId: client.clientId,
      serves: deps.serves(client.clientId),
      requestedScopes: scopeParam?.split(' ').filter(Boolean),
      requestedAudiences: [...list(params, 'resource'), ...list(params, 'audience')],
      subject,
      now,
      minimumAcr: deps.minimumAcr,
    });

    const act: ActClaim = subject.act ? { sub: client.clientId, act: subject.act } : { sub: client.clientId };
    const token = new deps.provider.AccessToken({
      accountId: subject.sub,
      client,
      scope: decision.scopes.join(' '),
      gty: 'token_exchange',
      // The resume token belongs to the user's session: revoking that session kills it too.
      ...(subject.sid ? { sid: subject.sid } : {}),
      // The user's sign-in (acr, amr, auth_time) travels with the token: a consumer can require
      // the same strength of a resumed flow as of the original call.
      extra: { ...subject.authentication, act, event_payload_hash: eventPayloadHash, [AUDIENCES_EXTRA]: decision.audiences },
    } as unknown as ConstructorParameters<Provider['AccessToken']>[0]);
    token.resourceServer = new deps.provider.ResourceServer(decision.audiences[0]!, {
      scope: decision.scopes.join(' '),
      audience: decision.audiences[0],
      accessTokenTTL: decision.lifetime,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256', kid: deps.signingKid() } },
    });
    const jti = assignTokenId(token);

    // One statement: the subject token's revocation check (its jti, its exchange ancestors, its
    // user's cut-off) and the exchange record, which chain revocation needs before the token
    // leaves; a revoked subject token records nothing. Recorded before signing, so a token is
    // never answered without its record.
    const recorded = await recordExchange({
      jti,
      clientId: client.clientId,
      subject: subject.sub,
      subjectTokenJti: subject.jti,
      subjectIssuedAt: subject.iat,
      subjectSid: subject.sid,
      subjectClientId: subject.clientId,
      subjectJkt: subject.jkt,
      actor: act,
      scopes: decision.scopes,
      audiences: decision.audiences,
      eventPayloadHash,
      expiresAt: new Date((now + decision.lifetime) * 1000),
    });
    if (!recorded) throw new errors.InvalidRequest('subject_token was revoked');

    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();

    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: decision.scopes.join(' '),
    };
  };
}

/** Registers the grant with oidc-provider (`registerGrantType`). */
export function registerTokenExchange(deps: TokenExchangeDeps): void {
  deps.provider.registerGrantType(
    grantType,
    createTokenExchangeHandler(deps) as never,
    [...parameters],
    [...allowedDuplicateParameters],
  );
}
