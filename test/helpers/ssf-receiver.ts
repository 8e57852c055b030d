import { expect } from 'vitest';
import { request, type Agent } from 'undici';
import type { TestApp } from './app.js';

/** An answer of the SSF management API, its body parsed as JSON when it is JSON. */
export interface Response {
  status: number;
  headers: Record<string, unknown>;
  body: any;
}

/** A receiver: its certificate, a certificate-bound token (ssf.manage unless told), JSON calls. */
export class Receiver {
  token = '';
  constructor(
    private readonly app: TestApp,
    readonly clientId: string,
    readonly agent: Agent,
  ) {}

  async login(scope = 'ssf.manage'): Promise<string> {
    const response = await request(`${this.app.issuer}/token`, {
      method: 'POST',
      dispatcher: this.agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: this.clientId, scope, resource: 'urn:custos:ssf' }).toString(),
    });
    const body = (await response.body.json()) as { access_token: string; scope: string };
    expect(response.statusCode).toBe(200);
    expect(body.scope).toBe(scope);
    this.token = body.access_token;
    return body.access_token;
  }

  async call(method: string, url: string, body?: unknown, options: { raw?: string; token?: string | null } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? this.token : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const response = await request(url, { method: method as 'GET', headers, body: payload, dispatcher: this.agent });
    const text = await response.body.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // keep the text
    }
    return { status: response.statusCode, headers: response.headers, body: parsed };
  }
}
