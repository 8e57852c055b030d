import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/app-error.js';
import { jsonBody } from '../http/json-body.js';
import type { AppState } from '../http/middleware.js';
import { POLL_DELIVERY, PUSH_DELIVERY, VerificationTooSoon, type SsfService, type StreamInput, type StreamSubject } from './ssf.service.js';

/** Paths of the SSF transmitter on the public listener. */
export const SSF_PATHS = {
  metadata: '/.well-known/ssf-configuration',
  jwks: '/ssf/jwks',
  streams: '/ssf/streams',
  status: '/ssf/status',
  addSubject: '/ssf/subjects:add',
  removeSubject: '/ssf/subjects:remove',
  verify: '/ssf/verify',
  poll: '/ssf/poll/',
} as const;

const uri = z.string().min(1).max(512);
const text = z.string().max(1024);
const streamId = z.string().min(1).max(64);
const streamProperties = {
  events_requested: z.array(uri).max(64).optional(),
  description: text.nullable().optional(),
  default_subjects: z.enum(['ALL', 'NONE']).optional(),
  delivery: z.looseObject({ method: uri, endpoint_url: uri.optional(), authorization_header: z.string().regex(/^[\x20-\x7e]{1,4096}$/, 'printable ASCII, at most 4096 characters').optional() }).optional(),
};
const createSchema = z.looseObject(streamProperties);
const changeSchema = z.looseObject({ stream_id: streamId, ...streamProperties });
const statusSchema = z.object({ stream_id: streamId, status: z.enum(['enabled', 'paused', 'disabled']), reason: text.optional() });
const simpleSubject = z.union([
  z.object({ format: z.literal('iss_sub'), iss: uri, sub: text.min(1) }),
  z.object({ format: z.literal('email'), email: text.min(1) }),
  z.object({ format: z.literal('opaque'), id: text.min(1) }),
]);
const subjectSchema = z.union([simpleSubject, z.object({ format: z.literal('complex').optional(), user: simpleSubject }).loose()]);
const subjectBody = z.object({ stream_id: streamId, subject: subjectSchema, verified: z.boolean().optional() });
const verifyBody = z.object({ stream_id: streamId, state: text.optional() });
const pollBody = z.object({
  maxEvents: z.number().int().min(0).max(1000).optional(),
  returnImmediately: z.boolean().optional(),
  ack: z.array(text).max(1000).optional(),
  setErrs: z.record(text, z.object({ err: text, description: text.optional() })).optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new AppError('invalid_request', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`, { status: 400 });
  }
  return result.data;
}

function toInput(body: z.infer<typeof createSchema>): StreamInput {
  return {
    eventsRequested: body.events_requested,
    description: body.description,
    defaultSubjects: body.default_subjects,
    deliveryMethod: body.delivery?.method,
    endpointUrl: body.delivery?.endpoint_url,
    authorizationHeader: body.delivery?.authorization_header,
  };
}

export interface SsfRoutesDeps {
  issuer: string;
  /** The public RS256 SET keys (the SSF `jwks_uri`). */
  setJwks: () => unknown[];
  service: SsfService;
  /** The receiver (client id) of the request's access token; throws 401/403. */
  authenticate: (ctx: Context, access: 'read' | 'manage') => Promise<string>;
  bodyLimitBytes: number;
}

/**
 * The SSF 1.0 transmitter endpoints: metadata (§7.1), stream configuration (§8.1.1), status
 * (§8.1.2), subjects (§8.1.3), verification (§8.1.4) and RFC 8936 poll delivery. Every endpoint but
 * the metadata needs a receiver token (see `createSsfAuth`); a receiver only sees its own streams.
 */
export function createSsfRoutes(deps: SsfRoutesDeps): Middleware<AppState> {
  const readJson = jsonBody(deps.bodyLimitBytes);
  const metadata = {
    spec_version: '1_0',
    issuer: deps.issuer,
    // CAEP Interoperability Profile 1.0 §2.3.3: the current key signing the SETs, RS256 (§2.6).
    jwks_uri: `${deps.issuer}${SSF_PATHS.jwks}`,
    delivery_methods_supported: [PUSH_DELIVERY, POLL_DELIVERY],
    configuration_endpoint: `${deps.issuer}${SSF_PATHS.streams}`,
    status_endpoint: `${deps.issuer}${SSF_PATHS.status}`,
    add_subject_endpoint: `${deps.issuer}${SSF_PATHS.addSubject}`,
    remove_subject_endpoint: `${deps.issuer}${SSF_PATHS.removeSubject}`,
    verification_endpoint: `${deps.issuer}${SSF_PATHS.verify}`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: 'ALL',
  };
  const allowed: Record<string, string[]> = {
    [SSF_PATHS.metadata]: ['GET', 'HEAD'],
    [SSF_PATHS.jwks]: ['GET', 'HEAD'],
    [SSF_PATHS.streams]: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'],
    [SSF_PATHS.status]: ['GET', 'POST'],
    [SSF_PATHS.addSubject]: ['POST'],
    [SSF_PATHS.removeSubject]: ['POST'],
    [SSF_PATHS.verify]: ['POST'],
  };

  const body = async (ctx: Context): Promise<unknown> => {
    let parsed: unknown;
    await readJson(ctx as never, async () => {
      parsed = (ctx.state as { body?: unknown }).body;
    });
    return parsed;
  };
  const queryStreamId = (ctx: Context): string | undefined => {
    const value = ctx.query['stream_id'];
    if (Array.isArray(value)) throw new AppError('invalid_request', 'stream_id must be given once', { status: 400 });
    return value;
  };

  // Requests for other paths pass on without an async frame (the public listener's hot path).
  return function ssfRoutes(ctx, next) {
    const path = ctx.path;
    const isPoll = path.startsWith(SSF_PATHS.poll);
    const methods = isPoll ? ['POST'] : allowed[path];
    return methods ? handle(ctx, next, path, isPoll, methods) : next();
  };

  async function handle(ctx: Parameters<Middleware<AppState>>[0], next: () => Promise<unknown>, path: string, isPoll: boolean, methods: string[]): Promise<unknown> {
    if (!methods.includes(ctx.method)) {
      ctx.status = 405;
      ctx.set('Allow', methods.join(', '));
      ctx.body = { error: 'invalid_request', error_description: `${ctx.method} is not allowed here; use ${methods.join(' or ')}` };
      return;
    }
    if (path === SSF_PATHS.metadata) {
      ctx.body = metadata;
      return;
    }
    if (path === SSF_PATHS.jwks) {
      ctx.set('Content-Type', 'application/jwk-set+json');
      ctx.body = JSON.stringify({ keys: deps.setJwks() });
      return;
    }
    // CAEP Interoperability Profile §2.7.3: reading a stream's configuration or status, and polling
    // its events, accept `ssf.read`; everything that changes a stream needs `ssf.manage`.
    const access = isPoll || ctx.method === 'GET' ? 'read' : 'manage';
    const clientId = await deps.authenticate(ctx as unknown as Context, access);
    const caller = { clientId, clientAddress: ctx.ip, requestId: ctx.state.requestId };
    const c = ctx as unknown as Context;
    if (isPoll) {
      const request = parse(pollBody, await body(c));
      const aborted = new AbortController();
      // The response closes before it was sent only when the receiver went away: stop waiting then.
      ctx.res.once('close', () => aborted.abort());
      // A stream id is a UUID: anything else (malformed percent-encoding included) is an unknown stream.
      const id = /^[0-9a-fA-F-]{36}$/.test(path.slice(SSF_PATHS.poll.length)) ? path.slice(SSF_PATHS.poll.length) : '';
      ctx.body = await deps.service.poll(clientId, id, request, aborted.signal);
      return;
    }
    switch (`${ctx.method} ${path}`) {
      case `POST ${SSF_PATHS.streams}`:
        ctx.status = 201;
        ctx.body = await deps.service.create(caller, toInput(parse(createSchema, await body(c))));
        return;
      case `GET ${SSF_PATHS.streams}`:
        ctx.body = await deps.service.read(clientId, queryStreamId(c));
        return;
      case `PATCH ${SSF_PATHS.streams}`:
      case `PUT ${SSF_PATHS.streams}`: {
        const input = parse(changeSchema, await body(c));
        ctx.body = await deps.service.change(caller, input.stream_id, toInput(input), ctx.method === 'PUT' ? 'replace' : 'update');
        return;
      }
      case `DELETE ${SSF_PATHS.streams}`: {
        const id = queryStreamId(c);
        if (!id) throw new AppError('invalid_request', 'stream_id is required', { status: 400 });
        await deps.service.remove(caller, id);
        ctx.status = 204;
        return;
      }
      case `GET ${SSF_PATHS.status}`: {
        const id = queryStreamId(c);
        if (!id) throw new AppError('invalid_request', 'stream_id is required', { status: 400 });
        ctx.body = await deps.service.status(clientId, id);
        return;
      }
      case `POST ${SSF_PATHS.status}`: {
        const input = parse(statusSchema, await body(c));
        ctx.body = await deps.service.setStatus(caller, input.stream_id, input.status, input.reason);
        return;
      }
      case `POST ${SSF_PATHS.addSubject}`:
      case `POST ${SSF_PATHS.removeSubject}`: {
        const input = parse(subjectBody, await body(c));
        const add = path === SSF_PATHS.addSubject;
        await deps.service.subject(caller, input.stream_id, input.subject as StreamSubject, add ? 'add' : 'remove');
        ctx.status = add ? 200 : 204;
        if (add) ctx.body = {};
        return;
      }
      case `POST ${SSF_PATHS.verify}`: {
        const input = parse(verifyBody, await body(c));
        try {
          await deps.service.verify(caller, input.stream_id, input.state);
        } catch (error) {
          if (error instanceof VerificationTooSoon) ctx.set('Retry-After', String(error.retryAfterSeconds));
          throw error;
        }
        ctx.status = 204;
        return;
      }
      default:
        return next();
    }
  }
}
