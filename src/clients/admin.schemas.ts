import { z } from 'zod';
import 'zod-openapi';
import { clientFields } from '../config/files.js';
import { text } from '../iam/admin.schemas.js';

/**
 * The zod schemas of `/admin/clients` (RFC 7591 metadata names): requests are validated with them
 * and the OpenAPI document is generated from them, as for users (src/iam/admin.schemas.ts).
 */

export const clientId = z
  .string()
  .regex(/^[A-Za-z0-9._~-]{1,128}$/, 'letters, digits, ".", "_", "~", "-" (1 to 128)')
  .meta({ description: 'client identifier', example: 'orders-api' });

export const clientPath = z.strictObject({ id: clientId });
export const certificatePath = z.strictObject({ id: clientId, certificateId: z.string().regex(/^\d{1,18}$/, 'a certificate binding id').meta({ description: 'certificate binding id' }) });

const metadata = clientFields.omit({ client_id: true, client_secret_hash: true });

/** RFC 7591 §2 metadata of a new client; without `client_id` one is generated. No secret: Custos generates it. */
export const createClientBody = metadata.extend({ client_id: clientId.optional() }).meta({ id: 'CreateClient' });

/** The whole metadata of a client (PUT replaces it); certificate bindings and secrets have their own operations. */
export const updateClientBody = metadata.meta({ id: 'UpdateClient' });

export const rotateSecretBody = z
  .strictObject({
    previous_secret_expires_at: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({ description: 'until when the current secret(s) stay valid (the overlap); absent: they end now' }),
  })
  .meta({ id: 'RotateClientSecret' });

const jwkSet = z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) });

/** A certificate binding: one `tls_client_auth_*` subject (tls_client_auth), or a JWK set with `x5c` (self_signed_tls_client_auth). */
export const certificateBody = z
  .strictObject({
    tls_client_auth_san_dns: z.string().min(1).max(253).optional(),
    tls_client_auth_san_uri: z.string().min(1).max(2048).optional(),
    tls_client_auth_subject_dn: z.string().min(1).max(1024).optional(),
    jwks: jwkSet.optional(),
  })
  .meta({ id: 'CertificateBinding' });

export const reasonBody = z
  .strictObject({ reason: text().max(256).regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters').optional() })
  .meta({ id: 'ClientStatusChange' });

const binding = z.record(z.string(), z.unknown());

/** A client as the API shows it: metadata, status, who manages it, secrets (ids and ends only) and certificate bindings. */
export const clientSchema = z
  .looseObject({
    client_id: clientId,
    status: z.enum(['active', 'disabled']),
    managed_by: z.enum(['config', 'api']).meta({ description: 'config: the client file manages it (the API refuses changes); api: this API' }),
    secrets: z.array(z.object({ id: z.string(), created_at: z.string(), expires_at: z.string().nullable() })),
    certificates: z.array(z.object({ id: z.string(), binding, created_at: z.string(), retired_at: z.string().nullable() })),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Client', description: 'RFC 7591 client metadata plus status, managed_by, secrets and certificates' });

/** A client with its new secret, shown this once (RFC 7591 §3.2.1 `client_secret`). */
export const clientWithSecretSchema = clientSchema.extend({ client_secret: z.string().optional().meta({ description: 'shown once; stored as an argon2id hash' }) }).meta({ id: 'ClientWithSecret' });

export const initialAccessTokenBody = z
  .strictObject({
    uses: z.number().int().min(1).max(1000).default(1).meta({ description: 'registrations it allows (default 1)' }),
    expires_in: z.number().int().min(60).max(30 * 24 * 3600).default(24 * 3600).meta({ description: 'lifetime in seconds (default one day)' }),
  })
  .meta({ id: 'IssueInitialAccessToken' });

export const initialAccessTokenSchema = z
  .object({ id: z.string(), initial_access_token: z.string().meta({ description: 'shown once; stored as a SHA-256 hash' }), uses: z.number(), expires_at: z.string() })
  .meta({ id: 'InitialAccessToken' });

export const initialAccessTokenPath = z.strictObject({ id: z.string().regex(/^\d{1,18}$/, 'an initial access token id').meta({ description: 'initial access token id' }) });

/** An initial access token as listed: never the token (it was shown once) nor its hash. */
export const initialAccessTokenInfoSchema = z
  .object({
    id: z.string(),
    uses_left: z.number(),
    expires_at: z.string(),
    created_by: z.string().meta({ description: 'actor that issued it (client:<admin client> or cli)' }),
    created_at: z.string(),
    usable: z.boolean().meta({ description: 'uses left and not expired' }),
  })
  .meta({ id: 'InitialAccessTokenInfo' });
