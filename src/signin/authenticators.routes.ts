import { z } from 'zod';
import { defineRoute, type AdminRoute } from '../http/admin-router.js';
import { adminActor } from '../iam/admin-mutation.js';
import { userId, userPath } from '../iam/admin.schemas.js';
import type { AuthenticatorService } from './authenticator.service.js';
import { ENROLLMENT_LINK_DEFAULT_SECONDS, ENROLLMENT_LINK_MAX_SECONDS } from './enrollment-link.js';

const timestamp = z.iso.datetime();

const authenticatorSchema = z
  .union([
    z.object({ id: z.literal('totp'), type: z.literal('totp'), created_at: timestamp, last_used_at: timestamp.nullable(), recovery_codes_left: z.number().int() }),
    z.object({
      id: z.string().meta({ example: 'passkey-12' }),
      type: z.literal('passkey'),
      name: z.string(),
      device_type: z.string().meta({ description: 'singleDevice or multiDevice (WebAuthn backup eligibility)' }),
      backed_up: z.boolean(),
      attachment: z.string().nullable().meta({ description: 'platform or cross-platform, when the browser said' }),
      created_at: timestamp,
      last_used_at: timestamp.nullable(),
    }),
  ])
  .meta({ id: 'Authenticator' });

const removedSchema = z.object({ removed: z.array(z.string()) }).meta({ id: 'AuthenticatorsRemoved' });

const authenticatorPath = z.strictObject({
  id: userId,
  authenticator: z.string().regex(/^(totp|passkey-[1-9][0-9]{0,17})$/, 'totp or passkey-<n>').meta({ example: 'totp' }),
});

/** `/admin/users/{id}/authenticators`: a user's second factors and passkeys; remove one or all. */
export function authenticatorRoutes(service: AuthenticatorService): AdminRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/admin/users/{id}/authenticators',
      operationId: 'listUserAuthenticators',
      summary: "List a user's authenticators: the authenticator app (with unused recovery codes) and passkeys; never key material",
      params: userPath,
      status: 200,
      response: z.object({ authenticators: z.array(authenticatorSchema) }).meta({ id: 'AuthenticatorList' }),
      errors: { 400: ['invalid_request'], 404: ['user_not_found'] },
      handle: ({ params }) => service.list(params.id),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/users/{id}/authenticators/{authenticator}',
      operationId: 'removeUserAuthenticator',
      summary: 'Remove one authenticator (totp also removes the recovery codes); audited, with a CAEP credential-change event (delete)',
      params: authenticatorPath,
      status: 200,
      response: removedSchema,
      errors: { 400: ['invalid_request'], 404: ['user_not_found', 'authenticator_not_found'] },
      handle: ({ params, request }) => service.remove(adminActor(request), params.id, params.authenticator),
    }),
    defineRoute({
      method: 'put',
      path: '/admin/users/{id}/authenticators/enrollment',
      operationId: 'requireUserEnrollment',
      summary: 'Require the user to set up an authenticator app (otp) or a passkey at the next sign-in, whatever the client asks; audited',
      params: userPath,
      body: z.strictObject({ factor: z.enum(['otp', 'passkey']) }).meta({ id: 'RequireEnrollment' }),
      status: 200,
      response: z.object({ factor: z.enum(['otp', 'passkey']) }).meta({ id: 'EnrollmentRequired' }),
      errors: { 400: ['invalid_request', 'invalid_json'], 404: ['user_not_found'], 413: ['body_too_large'], 415: ['unsupported_media_type'] },
      handle: ({ params, body, request }) => service.requireAtNextSignIn(adminActor(request), params.id, body.factor),
    }),
    defineRoute({
      method: 'post',
      path: '/admin/users/{id}/authenticators/enrollment-links',
      operationId: 'issueEnrollmentLink',
      summary:
        "Issue a one-time link with which the user creates a passkey without a password (hand it over out of band); only its hash is stored, earlier unused links of the user stop working; audited (without the link)",
      params: userPath,
      body: z
        .strictObject({
          expires_in: z
            .number()
            .int()
            .min(60)
            .max(ENROLLMENT_LINK_MAX_SECONDS)
            .optional()
            .meta({ description: `seconds the link stays valid (default ${ENROLLMENT_LINK_DEFAULT_SECONDS})`, example: 86400 }),
        })
        .meta({ id: 'IssueEnrollmentLink' }),
      status: 201,
      response: z
        .object({
          url: z.url().meta({ description: 'the link, shown once: whoever opens it first can add a passkey to this user' }),
          expires_at: timestamp,
        })
        .meta({ id: 'EnrollmentLink' }),
      errors: { 400: ['invalid_request', 'invalid_json'], 404: ['user_not_found'], 413: ['body_too_large'], 415: ['unsupported_media_type'] },
      handle: ({ params, body, request }) => service.issueEnrollmentLink(adminActor(request), params.id, body.expires_in ?? ENROLLMENT_LINK_DEFAULT_SECONDS),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/users/{id}/authenticators',
      operationId: 'resetUserAuthenticators',
      summary: "Remove all of a user's authenticators; audited, with a CAEP credential-change event (delete) per authenticator",
      params: userPath,
      status: 200,
      response: removedSchema,
      errors: { 400: ['invalid_request'], 404: ['user_not_found'] },
      handle: ({ params, request }) => service.remove(adminActor(request), params.id),
    }),
  ];
}
