import type { Middleware } from 'koa';
import { AppError } from '../http/app-error.js';
import { jsonBody, type JsonBodyState } from '../http/json-body.js';
import type { AppState } from '../http/middleware.js';
import { RegistrationTokenError, type RegistrationService } from './registration.service.js';

/** The registration endpoint (RFC 7591 §3) and client configuration endpoints (RFC 7592) on the public listener. */
export const REGISTRATION_PATH = '/register';
const CLIENT_PATH = /^\/register\/([A-Za-z0-9._~-]{1,128})$/;

function bearer(header: string): string | undefined {
  return /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)?.[1];
}

function metadataOf(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('invalid_client_metadata', 'the request body must be a JSON object of client metadata');
  return body as Record<string, unknown>;
}

/**
 * `POST /register` (initial access token as Bearer) and `GET|PUT|DELETE /register/{client_id}`
 * (registration access token as Bearer). Token refusals are 401 with a `WWW-Authenticate: Bearer`
 * challenge (RFC 6750 §3); metadata errors are RFC 7591 §3.2.2 JSON.
 */
export function registrationRoutes(service: RegistrationService, bodyLimitBytes: number): Middleware<AppState & JsonBodyState> {
  const readJson = jsonBody(bodyLimitBytes);
  async function handle(ctx: Parameters<Middleware<AppState & JsonBodyState>>[0], work: () => Promise<unknown>, status: number): Promise<void> {
    try {
      const body = await work();
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      if (status !== 204) ctx.body = body;
    } catch (error) {
      if (error instanceof RegistrationTokenError) ctx.set('WWW-Authenticate', `Bearer error="invalid_token"`);
      throw error;
    }
  }
  return async function registration(ctx, next) {
    const token = bearer(ctx.get('authorization'));
    if (ctx.path === REGISTRATION_PATH) {
      if (ctx.method !== 'POST') throw new AppError('invalid_request', 'use POST to register a client', { status: 405 });
      return readJson(ctx, () => handle(ctx, () => service.register(token, metadataOf(ctx.state.body) as never), 201));
    }
    const match = CLIENT_PATH.exec(ctx.path);
    if (!match) return next();
    const clientId = match[1]!;
    switch (ctx.method) {
      case 'GET':
        return handle(ctx, () => service.read(token, clientId), 200);
      case 'PUT':
        return readJson(ctx, () => handle(ctx, () => service.update(token, clientId, metadataOf(ctx.state.body) as never), 200));
      case 'DELETE':
        return handle(ctx, () => service.delete(token, clientId), 204);
      default:
        throw new AppError('invalid_request', 'use GET, PUT or DELETE on a client configuration endpoint', { status: 405 });
    }
  };
}
