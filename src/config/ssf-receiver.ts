import { createHash } from 'node:crypto';
import { z } from 'zod';
import { RECEIVER_EVENT_TYPES } from '../ssf/receiver/event-catalog.js';

/** JWS algorithms a transmitter may sign SETs with: asymmetric only (no `none`, no shared-secret HMAC). */
export const SET_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA'] as const;

/** RFC 9493 subject formats the receiver can map to a Custos user. */
export const RECEIVER_SUBJECT_FORMATS = ['iss_sub', 'email', 'opaque'] as const;

const httpsUrl = z
  .string()
  .refine((value) => URL.canParse(value) && new URL(value).protocol === 'https:', 'an absolute https URL (keys are never fetched over plain HTTP)');

const eventUri = z.enum(Object.values(RECEIVER_EVENT_TYPES) as [string, ...string[]], {
  message: `one of the event types the receiver acts on (${Object.keys(RECEIVER_EVENT_TYPES).join(', ')}; full CAEP/RISC URIs)`,
});

/** A public JWK: `d` (or any other private member) in a configured key set is a leaked private key. */
const publicJwk = z
  .looseObject({ kty: z.string().min(1) })
  .refine((jwk) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => member in jwk), 'a public key (it holds private key material: remove it and rotate the key)');

/**
 * One trusted SSF transmitter (OpenID SSF 1.0) whose Security Event Tokens Custos accepts by push
 * (RFC 8935) at `/ssf/receiver/events`, and polls (RFC 8936) when `poll` is set.
 */
export const transmitterSchema = z
  .strictObject({
    /** A short name: the audit actor (`ssf:<id>`), the metrics label, the logs. */
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a short name of lower-case letters, digits, ".", "_", "-"'),
    /** The transmitter's `iss` (exact string match, SSF 1.0 §7.1). */
    issuer: z.string().refine((value) => URL.canParse(value), 'an absolute URI'),
    /** Where the transmitter's signing keys are (fetched over verified TLS, cached, re-fetched for an unknown `kid`). */
    jwks_uri: httpsUrl.optional(),
    /** PEM file of the CA(s) that issue the `jwks_uri` and `poll.endpoint_url` servers' certificates (default: the system CAs). */
    tls_ca_file: z.string().min(1).optional(),
    /** The transmitter's public keys, inline, instead of `jwks_uri`. */
    jwks: z.strictObject({ keys: z.array(publicJwk).min(1) }).optional(),
    /** The `aud` Custos expects in this transmitter's SETs (the stream's audience at the transmitter). */
    audience: z.string().min(1),
    algorithms: z.array(z.enum(SET_ALGORITHMS)).min(1).default(['ES256']),
    /** Event types Custos acts on from this transmitter; others it knows are refused with `access_denied`. */
    accepted_events: z.array(eventUri).min(1),
    /**
     * How subjects name Custos users: `iss_sub` whose `iss` is Custos's issuer (then `sub` is the
     * Custos user id), `email` (exactly one user with that address), `opaque` (`id` is the user id).
     * A `complex` subject is mapped by its `user` member.
     */
    subject_formats: z.array(z.enum(RECEIVER_SUBJECT_FORMATS)).min(1),
    /**
     * With `iss_sub`: an `iss` (usually the transmitter's own issuer) whose `sub` values are Custos
     * usernames (compared as RFC 8265 usernames) — for a system that names users by the same
     * account name as Custos. Without it only Custos's own `iss` (user ids) maps.
     */
    username_issuer: z.string().refine((value) => URL.canParse(value), 'an absolute URI').optional(),
    /**
     * base64url SHA-256 of the whole `Authorization` header value the transmitter sends (RFC 8935
     * §2: the receiver may require one; SSF 1.0 `delivery.authorization_header`). Omitted: the SET
     * signature alone authenticates.
     */
    authorization_header_sha256: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'the base64url SHA-256 (43 characters) of the Authorization header value').optional(),
    /** How old (by `iat`) a SET may be when it arrives; older ones are refused. */
    max_age_seconds: z.number().int().min(10).max(7 * 24 * 3600).default(3600),
    /** Receive by poll (RFC 8936) from the transmitter's poll endpoint, besides accepting push. */
    poll: z
      .strictObject({
        /** The stream's poll endpoint at the transmitter (SSF `delivery.endpoint_url` of a poll stream). */
        endpoint_url: httpsUrl,
        /** A file holding the `Authorization` header value Custos sends (the receiver's credential at the transmitter). */
        authorization_file: z.string().min(1),
        max_events: z.number().int().min(1).max(1000).default(100),
        /** Pause between polls that returned nothing. */
        interval_seconds: z.number().int().min(1).max(3600).default(30),
      })
      .optional(),
  })
  .superRefine((transmitter, ctx) => {
    if (Boolean(transmitter.jwks_uri) === Boolean(transmitter.jwks)) {
      ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'exactly one of jwks_uri and jwks is required' });
    }
    if (transmitter.username_issuer && !transmitter.subject_formats.includes('iss_sub')) {
      ctx.addIssue({ code: 'custom', path: ['username_issuer'], message: 'needs iss_sub in subject_formats' });
    }
    if (transmitter.tls_ca_file && !transmitter.jwks_uri && !transmitter.poll) {
      ctx.addIssue({ code: 'custom', path: ['tls_ca_file'], message: 'only meaningful with jwks_uri or poll' });
    }
  });

/** The `ssf_receiver` config key: trusted transmitters. Absent or empty: the receiver is off. */
export const ssfReceiverSchema = z
  .strictObject({
    transmitters: z.array(transmitterSchema).default([]),
    /** Allowed clock difference for `iat` in the future. */
    clock_skew_seconds: z.number().int().min(0).max(300).default(60),
  })
  .superRefine((config, ctx) => {
    const ids = new Set<string>();
    const issuers = new Set<string>();
    config.transmitters.forEach((transmitter, index) => {
      if (ids.has(transmitter.id)) ctx.addIssue({ code: 'custom', path: ['transmitters', index, 'id'], message: `duplicate transmitter id ${transmitter.id}` });
      if (issuers.has(transmitter.issuer)) ctx.addIssue({ code: 'custom', path: ['transmitters', index, 'issuer'], message: 'another transmitter has this issuer' });
      ids.add(transmitter.id);
      issuers.add(transmitter.issuer);
    });
  });

export type SsfReceiverConfig = z.infer<typeof ssfReceiverSchema>;
export type TransmitterConfig = z.infer<typeof transmitterSchema>;

/** The base64url SHA-256 of an `Authorization` header value, as `authorization_header_sha256` holds it. */
export function authorizationHeaderDigest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** The `Authorization` header of the transmitter example in docs/operators.md: published, so refused in production. */
export const DEMO_TRANSMITTER_AUTHORIZATION = 'Bearer demo-transmitter-secret-change-me';

/**
 * Production start-up check: a transmitter using the published example `Authorization` header of
 * docs/operators.md is refused (anyone could send it). One line per transmitter, naming the field.
 */
export function ssfReceiverProductionProblems(config: SsfReceiverConfig | undefined, file: string): string[] {
  const demo = authorizationHeaderDigest(DEMO_TRANSMITTER_AUTHORIZATION);
  return (config?.transmitters ?? []).flatMap((transmitter, index) =>
    transmitter.authorization_header_sha256 === demo
      ? [`${file}: ssf_receiver.transmitters.${index}.authorization_header_sha256: the example header published in docs/operators.md — refused in production; generate a new secret`]
      : [],
  );
}
