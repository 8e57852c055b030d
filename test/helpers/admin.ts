import { request, type Agent } from 'undici';
import type { TestApp } from './app.js';

/** A response of the admin API: status, headers and parsed JSON body. */
export interface AdminResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** Admin API client for tests: the admin-cli certificate and a token bound to it. */
export interface AdminClient {
  url: string;
  agent: Agent;
  token: string;
  /** `reset`: close the connection after this request (no keep-alive reuse). */
  call(method: string, path: string, options?: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string | null; agent?: Agent; reset?: boolean }): Promise<AdminResponse>;
}

/** client_credentials over mTLS for the admin resource; returns the access token. */
export async function adminToken(app: TestApp, agent: Agent, form: Record<string, string> = {}): Promise<string> {
  const { status, body } = await app.token(
    { grant_type: 'client_credentials', client_id: 'admin-cli', scope: 'admin', resource: 'urn:custos:admin', ...form },
    { agent },
  );
  if (status !== 200) throw new Error(`admin token: ${status} ${JSON.stringify(body)}`);
  return body.access_token as string;
}

export async function adminClient(app: TestApp): Promise<AdminClient> {
  const agent = app.clientAgent('admin-cli');
  const token = await adminToken(app, agent);
  const url = `https://localhost:${app.custos.adminPort}`;
  const client: AdminClient = {
    url,
    agent,
    token,
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const bearer = options.token === undefined ? client.token : options.token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      let body: string | undefined = options.raw;
      if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      const response = await request(`${url}${path}`, { method: method as 'GET', headers, body, dispatcher: options.agent ?? agent, reset: options.reset ?? false });
      const text = await response.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text for the assertion message
      }
      return { status: response.statusCode, headers: response.headers, body: parsed };
    },
  };
  return client;
}
