import { defineRoute, type AdminRoute } from '../http/admin-router.js';
import { adminActor } from '../iam/admin-mutation.js';
import { pageOf, pageQuery } from '../iam/admin.schemas.js';
import { certificateBody, certificatePath, clientPath, clientSchema, clientWithSecretSchema, createClientBody, reasonBody, rotateSecretBody, updateClientBody } from './admin.schemas.js';
import type { ClientService } from './client.service.js';
import { initialAccessTokenBody, initialAccessTokenInfoSchema, initialAccessTokenPath, initialAccessTokenSchema } from './admin.schemas.js';
import type { RegistrationService } from './registration.service.js';

/** `/admin/initial-access-tokens`: issue, list, revoke (dynamic registration enabled only). */
export function initialAccessTokenRoutes(registration: RegistrationService): AdminRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/admin/initial-access-tokens',
      operationId: 'issueInitialAccessToken',
      summary: 'Issue an initial access token for dynamic client registration (RFC 7591 §3): shown once, for `uses` registrations until it expires',
      body: initialAccessTokenBody,
      bodyOptional: true,
      status: 201,
      response: initialAccessTokenSchema,
      errors: { 400: ['invalid_request', 'invalid_json'], ...BODY_ERRORS },
      handle: ({ body, request }) => registration.issueInitialAccessToken({ uses: body.uses, expiresInSeconds: body.expires_in }, adminActor(request)),
    }),
    defineRoute({
      method: 'get',
      path: '/admin/initial-access-tokens',
      operationId: 'listInitialAccessTokens',
      summary: 'List initial access tokens (ordered by id; never the tokens): uses left, expiry, who issued them',
      query: pageQuery,
      status: 200,
      response: pageOf(initialAccessTokenInfoSchema, 'InitialAccessTokenPage'),
      errors: { 400: ['invalid_request', 'invalid_cursor'] },
      handle: ({ query }) => registration.listInitialAccessTokens(query),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/initial-access-tokens/{id}',
      operationId: 'revokeInitialAccessToken',
      summary: 'Revoke an initial access token: no registration can use it from now on',
      params: initialAccessTokenPath,
      status: 204,
      errors: { 400: ['invalid_request'], 404: ['initial_access_token_not_found'] },
      handle: ({ params, request }) => registration.revokeInitialAccessToken(params.id, adminActor(request)),
    }),
  ];
}

const BODY_ERRORS = { 413: ['body_too_large'], 415: ['unsupported_media_type'] };
const METADATA_ERRORS = ['invalid_request', 'invalid_json', 'invalid_client_metadata', 'invalid_redirect_uri'];

/** `/admin/clients`: register, read, list, update, disable, enable, delete; rotate secrets; add and retire certificate bindings. */
export function clientRoutes(clients: ClientService): AdminRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/admin/clients',
      operationId: 'createClient',
      summary: 'Register a client (RFC 7591 metadata); a client of a secret method gets a generated secret, shown once',
      body: createClientBody,
      status: 201,
      response: clientWithSecretSchema,
      errors: { 400: METADATA_ERRORS, 409: ['client_exists'], ...BODY_ERRORS },
      handle: async ({ body, request }) => {
        const created = await clients.create(body, adminActor(request));
        return { ...created.client, ...(created.client_secret ? { client_secret: created.client_secret } : {}) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/admin/clients',
      operationId: 'listClients',
      summary: 'List clients (ordered by client_id)',
      query: pageQuery,
      status: 200,
      response: pageOf(clientSchema, 'ClientPage'),
      errors: { 400: ['invalid_request', 'invalid_cursor'] },
      handle: ({ query }) => clients.list(query),
    }),
    defineRoute({
      method: 'get',
      path: '/admin/clients/{id}',
      operationId: 'getClient',
      summary: 'Read a client',
      params: clientPath,
      status: 200,
      response: clientSchema,
      errors: { 400: ['invalid_request'], 404: ['client_not_found'] },
      handle: ({ params }) => clients.get(params.id),
    }),
    defineRoute({
      method: 'put',
      path: '/admin/clients/{id}',
      operationId: 'updateClient',
      summary: "Replace a client's metadata (not its authentication method, secrets or certificate bindings)",
      params: clientPath,
      body: updateClientBody,
      status: 200,
      response: clientSchema,
      errors: { 400: METADATA_ERRORS, 404: ['client_not_found'], 409: ['managed_by_config'], ...BODY_ERRORS },
      handle: ({ params, body, request }) => clients.update(params.id, body, adminActor(request)),
    }),
    defineRoute({
      method: 'post',
      path: '/admin/clients/{id}/disable',
      operationId: 'disableClient',
      summary: 'Disable a client: it can no longer authenticate, and every token, refresh token and resume token it holds dies at once',
      params: clientPath,
      body: reasonBody,
      bodyOptional: true,
      status: 200,
      response: clientSchema,
      errors: { 400: ['invalid_request', 'invalid_json'], 404: ['client_not_found'], 409: ['managed_by_config'], ...BODY_ERRORS },
      handle: ({ params, body, request }) => clients.disable(params.id, adminActor(request), body.reason),
    }),
    defineRoute({
      method: 'post',
      path: '/admin/clients/{id}/enable',
      operationId: 'enableClient',
      summary: 'Enable a disabled client (tokens cut off when it was disabled stay dead)',
      params: clientPath,
      body: reasonBody,
      bodyOptional: true,
      status: 200,
      response: clientSchema,
      errors: { 400: ['invalid_request', 'invalid_json'], 404: ['client_not_found'], 409: ['managed_by_config'], ...BODY_ERRORS },
      handle: ({ params, body, request }) => clients.enable(params.id, adminActor(request), body.reason),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/clients/{id}',
      operationId: 'deleteClient',
      summary: 'Delete a client and kill every token it holds',
      params: clientPath,
      status: 204,
      errors: { 400: ['invalid_request'], 404: ['client_not_found'], 409: ['managed_by_config'] },
      handle: ({ params, request }) => clients.delete(params.id, adminActor(request)),
    }),
    defineRoute({
      method: 'post',
      path: '/admin/clients/{id}/secret',
      operationId: 'rotateClientSecret',
      summary: 'Generate a new client secret (shown once); the current one stays valid until previous_secret_expires_at, or ends now',
      params: clientPath,
      body: rotateSecretBody,
      bodyOptional: true,
      status: 200,
      response: clientWithSecretSchema,
      errors: { 400: ['invalid_request', 'invalid_json', 'invalid_client_metadata', 'not_applicable'], 404: ['client_not_found'], 409: ['managed_by_config'], ...BODY_ERRORS },
      handle: async ({ params, body, request }) => {
        const until = body.previous_secret_expires_at ? new Date(body.previous_secret_expires_at) : undefined;
        const rotated = await clients.rotateSecret(params.id, adminActor(request), until);
        return { ...rotated.client, client_secret: rotated.client_secret };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/admin/clients/{id}/certificates',
      operationId: 'addClientCertificate',
      summary: 'Add a certificate binding next to the current ones (a tls_client_auth_* subject, or a JWK set with x5c for self_signed_tls_client_auth)',
      params: clientPath,
      body: certificateBody,
      status: 201,
      response: clientSchema,
      errors: { 400: ['invalid_request', 'invalid_json', 'invalid_client_metadata', 'not_applicable'], 404: ['client_not_found'], 409: ['managed_by_config'], ...BODY_ERRORS },
      handle: ({ params, body, request }) => clients.addCertificate(params.id, body, adminActor(request)),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/clients/{id}/certificates/{certificateId}',
      operationId: 'retireClientCertificate',
      summary: 'Retire a certificate binding (not the last active one)',
      params: certificatePath,
      status: 200,
      response: clientSchema,
      errors: { 400: ['invalid_request'], 404: ['client_not_found', 'certificate_not_found'], 409: ['managed_by_config', 'last_certificate'] },
      handle: ({ params, request }) => clients.retireCertificate(params.id, params.certificateId, adminActor(request)),
    }),
  ];
}
