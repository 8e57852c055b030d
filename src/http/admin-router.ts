import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponseObject } from 'zod-openapi';
import { ADMIN_AUDIENCE, ADMIN_SCOPE, type AdminAuthState, type AdminCaller } from './admin-auth.js';
import { FieldError, type FieldIssue } from './admin-errors.js';
import type { JsonBodyState } from './json-body.js';
import type { AppState } from './middleware.js';

/** Who did it and from where, for the audit record of an admin action. */
export interface AdminRequest {
  caller: AdminCaller;
  clientAddress: string;
  requestId: string;
}

type AnyObject = z.ZodObject<z.ZodRawShape>;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** One admin endpoint: its schemas (validation and OpenAPI come from the same ones) and handler. */
export interface AdminRoute<P extends AnyObject | undefined = AnyObject | undefined, Q extends AnyObject | undefined = AnyObject | undefined, B extends z.ZodType | undefined = z.ZodType | undefined> {
  method: 'get' | 'post' | 'put' | 'delete';
  /** OpenAPI path template, e.g. `/admin/users/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Whether an absent body is accepted (validated as `{}`). */
  bodyOptional?: boolean;
  /** Success status and response schema. */
  status: 200 | 201 | 204;
  response?: z.ZodType;
  /** Error codes this endpoint may answer besides the authentication ones, by status. */
  errors: Partial<Record<400 | 404 | 409 | 413 | 415 | 503, string[]>>;
  handle(input: { params: Out<P>; query: Out<Q>; body: Out<B>; request: AdminRequest }): Promise<unknown>;
}

/** Typed constructor for an {@link AdminRoute} (infers the handler's input types from the schemas). */
export function defineRoute<P extends AnyObject | undefined = undefined, Q extends AnyObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  route: AdminRoute<P, Q, B>,
): AdminRoute {
  return route as unknown as AdminRoute;
}

/** The error body every admin endpoint answers with (`fields` for invalid input). */
export const errorSchema = z
  .object({
    error: z.string().meta({ description: 'stable error code' }),
    error_description: z.string(),
    fields: z.array(z.object({ in: z.enum(['path', 'query', 'body']), field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Error' });

function issues(where: FieldIssue['in'], error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    in: where,
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : issue.code === 'unrecognized_keys' ? issue.keys.join(',') : '',
    message: issue.message,
  }));
}

function validate<S extends z.ZodType>(schema: S | undefined, value: unknown, where: FieldIssue['in']): z.output<S> | undefined {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw new FieldError('invalid_request', `invalid ${where === 'body' ? 'request body' : `${where} parameters`}`, issues(where, result.error));
  return result.data;
}

const toKoaPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

type AdminState = AppState & AdminAuthState & JsonBodyState;

/**
 * Mounts the routes on a @koa/router: path, query and body are validated with the route's zod
 * schemas (strict: unknown fields are refused) before the handler runs; wrong methods are 405.
 */
export function adminRouter(routes: readonly AdminRoute[]): Middleware<AdminState> {
  const router = new Router<AdminState>();
  for (const route of routes) {
    router[route.method](toKoaPath(route.path), async (ctx) => {
      const params = validate(route.params, ctx.params, 'path');
      const query = validate(route.query, { ...ctx.query }, 'query');
      if (!route.body && ctx.state.body !== undefined) {
        throw new FieldError('invalid_request', 'this endpoint takes no request body', [{ in: 'body', field: '', message: 'unexpected body' }]);
      }
      if (route.body && ctx.state.body === undefined && !route.bodyOptional) {
        throw new FieldError('invalid_request', 'a JSON request body is required', [{ in: 'body', field: '', message: 'required' }]);
      }
      const body = validate(route.body, ctx.state.body ?? {}, 'body');
      const request: AdminRequest = { caller: ctx.state.admin, clientAddress: ctx.ip, requestId: ctx.state.requestId };
      const result = await route.handle({ params, query, body, request } as never);
      ctx.status = route.status;
      ctx.set('Cache-Control', 'no-store');
      if (route.status !== 204) ctx.body = result;
    });
  }
  const allowed = router.allowedMethods({ throw: true });
  const matched = router.routes();
  return async function adminRoutes(ctx, next) {
    await matched(ctx as never, async () => {
      await allowed(ctx as never, next);
    });
  };
}

const AUTH_ERRORS = {
  401: { description: 'no, invalid, expired, revoked, wrongly bound or foreign-audience token (token_required, invalid_token, binding_mismatch, wrong_audience, token_revoked, ...)' },
  403: { description: 'the token lacks scope admin (insufficient_scope)' },
} as const;

/**
 * The admin API's OpenAPI 3.1 document, generated from the routes' own zod schemas
 * (zod-openapi), with mutual TLS and the certificate-bound OAuth 2.0 token as security.
 */
export function adminOpenApiDocument(routes: readonly AdminRoute[], options: { issuer: string; version: string }): Record<string, unknown> {
  const paths: ZodOpenApiPathsObject = {};
  const errorContent = { 'application/json': { schema: errorSchema } };
  for (const route of routes) {
    const responses: Record<string, ZodOpenApiResponseObject> = {
      [route.status]: route.response
        ? { description: 'success', content: { 'application/json': { schema: route.response } } }
        : { description: 'success' },
    };
    for (const [status, codes] of Object.entries(route.errors)) {
      responses[status] = { description: (codes ?? []).join(', '), content: errorContent };
    }
    for (const [status, { description }] of Object.entries(AUTH_ERRORS)) responses[status] = { description, content: errorContent };
    const operation: ZodOpenApiOperationObject = {
      operationId: route.operationId,
      summary: route.summary,
      requestParams: { ...(route.params ? { path: route.params } : {}), ...(route.query ? { query: route.query } : {}) },
      responses: responses as ZodOpenApiOperationObject['responses'],
      ...(route.body ? { requestBody: { required: !route.bodyOptional, content: { 'application/json': { schema: route.body } } } } : {}),
    };
    paths[route.path] = { ...paths[route.path], [route.method]: operation };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Custos admin API',
      version: options.version,
      description:
        'Users, roles, sessions and the audit log. Every request needs a client certificate chaining to the client CA (mutual TLS) and a Bearer access token for audience urn:custos:admin with scope admin, bound to that certificate (RFC 8705).',
    },
    security: [{ mutualTLS: [], adminToken: [ADMIN_SCOPE] }],
    components: {
      securitySchemes: {
        // OpenAPI 3.1 `mutualTLS` (zod-openapi's types predate it).
        mutualTLS: { type: 'mutualTLS' as 'http', description: 'client certificate chaining to the client CA' },
        adminToken: {
          type: 'oauth2',
          description: `client_credentials over mutual TLS with resource=${ADMIN_AUDIENCE}; the token is certificate-bound`,
          flows: { clientCredentials: { tokenUrl: `${options.issuer}/token`, scopes: { [ADMIN_SCOPE]: 'administer users, roles and sessions' } } },
        },
      },
    },
    paths,
  }) as unknown as Record<string, unknown>;
}
