import { timingSafeEqual } from 'node:crypto';
import { compactVerify, decodeJwt, decodeProtectedHeader, errors, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { authorizationHeaderDigest, type TransmitterConfig } from '../../config/ssf-receiver.js';
import { storable } from '../../db/storable.js';
import { eventNameOf, SSF_CONTROL_EVENT_TYPES, type ReceiverEventName } from './event-catalog.js';

/** The error codes of RFC 8935 §2.4 (Security Event Token Delivery Error Codes). */
export type PushErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied';

/** A SET refused: answered 400 `{err, description}` (RFC 8935 §2.3); nothing is recorded. */
export class SetRefused extends Error {
  override readonly name = 'SetRefused';
  constructor(
    readonly err: PushErrorCode,
    readonly description: string,
    /** The transmitter, once the `iss` named a configured one. */
    readonly transmitter?: string,
  ) {
    super(description);
  }
}

/** The transmitter's keys could not be fetched: answered 503, the transmitter retries. */
export class KeysUnavailable extends Error {
  override readonly name = 'KeysUnavailable';
  constructor(
    readonly transmitter: string,
    options: { cause: unknown },
  ) {
    super(`keys of transmitter ${transmitter} unavailable`, options);
  }
}

/** A trusted transmitter with its key resolver. */
export interface Transmitter {
  config: TransmitterConfig;
  keys: JWTVerifyGetKey;
}

/** RFC 9493 subject identifier, as received (not yet mapped to a user). */
export type ReceivedSubject = Record<string, unknown> & { format: string };

/** A SET whose signature, issuer, audience, `iat` and shape were verified. */
export interface VerifiedSet {
  transmitter: TransmitterConfig;
  issuer: string;
  jti: string;
  /** The event type URI (the one member of `events`). */
  eventType: string;
  /**
   * What kind of event: one Custos acts on (its catalogue name), an SSF control event
   * (verification, stream updated), or one Custos does not know (acknowledged and ignored).
   */
  kind: { known: ReceiverEventName } | { control: true } | { unknown: true };
  payload: Record<string, unknown>;
  /** `sub_id` (SSF 1.0 §4.1.1), or the event's own `subject` member (earlier CAEP/RISC drafts). */
  subject?: ReceivedSubject;
}

const TYP = /^(application\/)?secevent\+jwt$/i;
const MAX_JTI = 256;

/** Event payload members Custos reads; the rest of each payload is free (CAEP 1.0 §3, RISC 1.0 §2). */
const PAYLOAD_SCHEMAS: Partial<Record<ReceiverEventName, z.ZodType>> = {
  'credential-change': z.looseObject({ credential_type: z.string().min(1), change_type: z.enum(['create', 'revoke', 'update', 'delete']) }),
  'device-compliance-change': z.looseObject({ previous_status: z.enum(['compliant', 'not-compliant']), current_status: z.enum(['compliant', 'not-compliant']) }),
};
const commonPayload = z.looseObject({ event_timestamp: z.number().int().nonnegative().optional() });
const subjectSchema = z.looseObject({ format: z.string().min(1).max(64) });

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether the `Authorization` header is the transmitter's, compared in constant time (digests of equal length). */
function authorizationMatches(expectedDigest: string, header: string | undefined): boolean {
  const expected = Buffer.from(expectedDigest, 'base64url');
  const received = Buffer.from(authorizationHeaderDigest(header ?? ''), 'base64url');
  return header !== undefined && header !== '' && timingSafeEqual(expected, received);
}

/**
 * `compactVerify` with the transmitter's keys; when several keys match the header (no `kid`, or one
 * `kid` on several keys) each is tried in turn, as jose's own `jwtVerify` does.
 */
async function verifySignature(token: string, keys: JWTVerifyGetKey, algorithms: string[]): Promise<{ payload: Uint8Array }> {
  try {
    return await compactVerify(token, keys, { algorithms });
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error as unknown as AsyncIterable<CryptoKey>) {
      try {
        return await compactVerify(token, key, { algorithms });
      } catch (attempt) {
        if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

export interface SetVerifierDeps {
  /** The trusted transmitters, by issuer. */
  transmitters: ReadonlyMap<string, Transmitter>;
  clockSkewSeconds: number;
  now?: () => number;
}

/**
 * Verifies a pushed SET (RFC 8935 §2, RFC 8417, SSF 1.0 §4): compact JWS only (no `none`, no
 * encryption); `typ` `secevent+jwt`; an `iss` of a configured transmitter; that transmitter's
 * `Authorization` header when it has one; an `alg` it is configured for (asymmetric only); a
 * signature by one of its keys; `aud` containing its configured audience; `iat` present, not in the
 * future beyond the clock skew, not older than its `max_age_seconds`; no `exp` (a SET is not an ID
 * or access token, RFC 8417 §4); a `jti`; exactly one event; an event type the transmitter is
 * allowed to send (`access_denied` otherwise). Throws {@link SetRefused} or {@link KeysUnavailable}.
 */
export function createSetVerifier(deps: SetVerifierDeps) {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));

  /**
   * `channel`: a push request's `Authorization` header (checked when the transmitter has one
   * configured), or `polled` for a SET Custos fetched itself from the transmitter's poll endpoint.
   */
  return async function verifySet(token: string, channel: { authorization?: string } | { polled: true }): Promise<VerifiedSet> {
    const parts = token.split('.');
    if (parts.length === 5) throw new SetRefused('invalid_request', 'encrypted SETs are not accepted; send a signed SET (JWS)');
    if (parts.length !== 3) throw new SetRefused('invalid_request', 'the body is not a SET (compact JWS)');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      throw new SetRefused('invalid_request', 'the body is not a SET (compact JWS)');
    }
    if (typeof header.typ !== 'string' || !TYP.test(header.typ)) throw new SetRefused('invalid_request', 'typ must be secevent+jwt (RFC 8417 §2.3)');
    const issuer = unverified.iss;
    const transmitter = typeof issuer === 'string' ? deps.transmitters.get(issuer) : undefined;
    if (!transmitter || issuer === undefined) throw new SetRefused('invalid_issuer', 'the SET issuer is not a trusted transmitter');
    const config = transmitter.config;
    const refuse = (err: PushErrorCode, description: string) => new SetRefused(err, description, config.id);
    if (!('polled' in channel) && config.authorization_header_sha256 && !authorizationMatches(config.authorization_header_sha256, channel.authorization)) {
      throw refuse('authentication_failed', 'missing or wrong Authorization header');
    }
    if (typeof header.alg !== 'string' || !(config.algorithms as string[]).includes(header.alg)) {
      throw refuse('invalid_request', `alg ${String(header.alg)} is not accepted from this transmitter`);
    }

    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await verifySignature(token, transmitter.keys, config.algorithms));
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) throw refuse('invalid_key', 'no key of the transmitter matches the SET');
      if (error instanceof errors.JWSSignatureVerificationFailed) throw refuse('authentication_failed', 'signature verification failed');
      // Timeout, network or TLS failure, an error status, a document that is no JWKS: Custos cannot get the keys now.
      if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || !(error instanceof errors.JOSEError) || error.code === 'ERR_JOSE_GENERIC') {
        throw new KeysUnavailable(config.id, { cause: error });
      }
      throw refuse('invalid_key', 'the SET cannot be verified with the transmitter keys');
    }
    let claims: unknown;
    try {
      claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes));
    } catch {
      throw refuse('invalid_request', 'the SET payload is not a JSON object');
    }
    if (!isObject(claims)) throw refuse('invalid_request', 'the SET payload is not a JSON object');

    const aud = claims['aud'];
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(config.audience)) throw refuse('invalid_audience', 'the SET audience is not this receiver');
    const iat = claims['iat'];
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw refuse('invalid_request', 'iat is required');
    const at = now();
    if (iat > at + deps.clockSkewSeconds) throw refuse('invalid_request', 'iat is in the future');
    if (iat < at - config.max_age_seconds) throw refuse('invalid_request', `the SET is older than ${config.max_age_seconds} seconds (iat)`);
    if ('exp' in claims) throw refuse('invalid_request', 'a SET carries no exp (RFC 8417 §4)');
    const jti = claims['jti'];
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI || !storable(jti)) throw refuse('invalid_request', `jti must be a string of 1 to ${MAX_JTI} characters`);
    const events = claims['events'];
    if (!isObject(events) || Object.keys(events).length !== 1) throw refuse('invalid_request', 'events must hold exactly one event (SSF 1.0 §4.1)');
    const [eventType, payload] = Object.entries(events)[0]!;
    if (!isObject(payload)) throw refuse('invalid_request', 'the event payload must be a JSON object');

    if (SSF_CONTROL_EVENT_TYPES.includes(eventType)) return { transmitter: config, issuer, jti, eventType, kind: { control: true }, payload };
    const name = eventNameOf(eventType);
    if (!name) return { transmitter: config, issuer, jti, eventType, kind: { unknown: true }, payload };
    if (!config.accepted_events.includes(eventType)) throw refuse('access_denied', 'this transmitter is not allowed to send this event type');
    const schema = PAYLOAD_SCHEMAS[name] ?? commonPayload;
    const checked = schema.safeParse(payload);
    if (!checked.success || !commonPayload.safeParse(payload).success) {
      const issue = checked.success ? undefined : checked.error.issues[0];
      throw refuse('invalid_request', `the ${name} event does not conform to its definition${issue ? ` (${issue.path.join('.') || 'payload'}: ${issue.message})` : ''}`);
    }
    const subject = claims['sub_id'] ?? payload['subject'];
    if (!subjectSchema.safeParse(subject).success) throw refuse('invalid_request', 'sub_id (an RFC 9493 subject identifier) is required');
    return { transmitter: config, issuer, jti, eventType, kind: { known: name }, payload, subject: subject as ReceivedSubject };
  };
}

export type SetVerifier = ReturnType<typeof createSetVerifier>;
