import { z } from 'zod';
import 'zod-openapi';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password-policy.js';
import { ROLE_NAME } from './role.repository.js';

/**
 * The admin API's zod schemas: handlers validate with them and the OpenAPI document is generated
 * from them. Request objects are strict (an unknown field is an error); JSON is snake_case.
 */

const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const WELL_FORMED = 'not well-formed Unicode (a lone UTF-16 surrogate)';

/** A string of well-formed Unicode: JSON can escape a lone surrogate, PostgreSQL text and jsonb cannot hold one. */
export const text = () => z.string().refine((value) => value.isWellFormed(), WELL_FORMED);

export const userId = z.uuid().meta({ description: 'user id (UUID)', example: '7f9c24e8-3b12-4d5e-8f6a-1b2c3d4e5f60' });
export const roleName = z.string().regex(ROLE_NAME, 'role names are lower case: a letter, then up to 63 of a-z 0-9 : _ . -').meta({ example: 'orders-admin' });
/**
 * Shape only; the rules of RFC 8265 (letters, digits and printable ASCII of one script; width,
 * case and NFC do not make a new name) are `username.ts`'s, applied by the user service.
 */
export const username = text()
  .trim()
  .min(1)
  .max(128)
  .regex(NO_CONTROL, 'no control characters')
  .meta({
    description:
      'RFC 8265 username: letters, digits and printable ASCII, in one script (UTS #39 highly restrictive); no spaces, symbols, invisible or control characters (invalid_username). Unique as RFC 8265 UsernameCaseMapped compares: any letter case or width is the same name (username_taken); stored width-mapped and NFC, case kept',
    example: 'alice',
  });
export const password = text()
  .min(MIN_PASSWORD_LENGTH, `at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(MAX_PASSWORD_LENGTH * 2)
  .meta({ description: `${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters, not the username, not one repeated character; stored as an argon2id hash, never returned`, format: 'password' });
const reason = text().max(256).regex(NO_CONTROL, 'no control characters').meta({ description: 'free text for the audit log and the event (reason_admin)' });

export const userPath = z.strictObject({ id: userId });
export const userRolePath = z.strictObject({ id: userId, role: roleName });

/** `limit` (1..200, default 50) and the opaque `cursor` of the previous page's `next_cursor`. */
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ description: 'page size' }),
  cursor: z.string().min(1).max(512).optional().meta({ description: 'next_cursor of the previous page' }),
});

export const createUserBody = z
  .strictObject({
    username,
    email: z.email().max(254).nullable().optional(),
    password: password.optional(),
    roles: z.array(roleName).max(64).optional(),
  })
  .meta({ id: 'CreateUser' });

export const setPasswordBody = z.strictObject({ password }).meta({ id: 'SetPassword' });
export const statusChangeBody = z.strictObject({ reason: reason.optional() }).meta({ id: 'StatusChange' });
export const createRoleBody = z
  .strictObject({ name: roleName, description: text().max(1024).regex(NO_CONTROL, 'no control characters').nullable().optional() })
  .meta({ id: 'CreateRole' });

export const userSchema = z
  .object({
    id: userId,
    username: z.string(),
    email: z.string().nullable(),
    disabled: z.boolean(),
    roles: z.array(z.string()),
    has_password: z.boolean(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
    password_changed_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'User' });

export const roleSchema = z.object({ name: z.string(), description: z.string().nullable(), created_at: z.iso.datetime() }).meta({ id: 'Role' });

export const sessionSchema = z
  .object({
    id: z.string().meta({ description: 'session uid (not the cookie value)' }),
    login_at: z.iso.datetime().nullable(),
    expires_at: z.iso.datetime().nullable(),
    clients: z.array(z.string()).meta({ description: 'clients that hold an authorization in this session' }),
    amr: z.array(z.string()).optional(),
  })
  .meta({ id: 'Session' });

export const revocationSchema = z
  .object({
    sessions_revoked: z.number().int(),
    grants_revoked: z.number().int(),
    tokens_revoked: z.number().int().meta({ description: 'stored refresh tokens, opaque access tokens and codes deleted' }),
    jwt_access_tokens_revoked_before: z.iso.datetime().meta({ description: 'JWT access tokens and resume tokens of the user issued up to this time introspect inactive' }),
    backchannel_logout: z.object({ sent: z.number().int(), failed: z.number().int() }),
  })
  .meta({ id: 'Revocation' });

export const auditQuery = pageQuery.extend({
  actor: z.string().min(1).max(256).regex(NO_CONTROL, 'no control characters').optional().meta({ example: 'client:admin-cli' }),
  target: z.string().min(1).max(256).regex(NO_CONTROL, 'no control characters').optional().meta({ example: 'user:7f9c24e8-3b12-4d5e-8f6a-1b2c3d4e5f60' }),
  action: z.string().min(1).max(128).regex(NO_CONTROL, 'no control characters').optional().meta({ example: 'sessions.revoke' }),
  since: z.iso.datetime({ offset: true }).optional().meta({ description: 'inclusive' }),
  until: z.iso.datetime({ offset: true }).optional().meta({ description: 'exclusive' }),
});

export const auditEntrySchema = z
  .object({
    id: z.string(),
    at: z.iso.datetime(),
    actor: z.string(),
    action: z.string(),
    target: z.string().nullable(),
    outcome: z.enum(['success', 'failure', 'denied']),
    client_address: z.string().nullable(),
    request_id: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

/** `{ items, next_cursor }`: `next_cursor` is null on the last page. */
export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() }).meta({ id });
}
