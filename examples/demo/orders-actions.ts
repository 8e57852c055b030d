/**
 * The demo's buttons on the BFF page: call the orders API through the continuous-authorization
 * proxy with the user's access token, and "revoke my sessions" as an administrator would (admin
 * API), then measure how long the proxy still accepts the old token.
 *
 * The revocation also ends this BFF session (Custos's back-channel logout), so the page keeps the
 * old access token (by the browser's cookie) to show that the proxy refuses it from then on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import type { BffExtension, BffSession } from '../bff/bff-app.js';
import type { AdminClient, RevocationSummary } from './admin-client.js';

export interface OrdersCall {
  at: string;
  status: number;
  body: unknown;
  /** The token was the one held before the revocation (the session is gone). */
  oldToken: boolean;
}

export interface RevocationMeasure {
  summary?: RevocationSummary;
  error?: string;
  /** Milliseconds from sending the admin request to its answer. */
  adminAnsweredMs?: number;
  /** Milliseconds from sending the admin request to the proxy's first refusal; undefined when not seen. */
  refusedAfterMs?: number;
  refusal?: { status: number; body: unknown };
  /** Calls made (accepted ones included) until the refusal. */
  calls: number;
}

interface Held {
  username: string;
  accessToken: string;
  lastCall?: OrdersCall;
  revocation?: RevocationMeasure;
}

export interface OrdersActionsOptions {
  /** The proxy in front of the orders API. */
  ordersUrl: string;
  caPem: string;
  admin: AdminClient;
  /** One line about what feeds the proxy (events or introspection). */
  feed: string;
  /** How long to wait for the refusal. Default 10 s. */
  refusalTimeoutMs?: number;
}

const escape = (value: unknown) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Answers 303 to the home page; true (answered) for {@link BffExtension.handle}. */
const redirectHome = (res: ServerResponse): true => {
  res.writeHead(303, { location: '/' });
  res.end();
  return true;
};

export function ordersActions(options: OrdersActionsOptions): BffExtension & { close(): Promise<void> } {
  const agent = new Agent({ connect: { ca: options.caPem } });
  const held = new Map<string, Held>();

  async function callOrders(token: string): Promise<{ status: number; body: unknown }> {
    const response = await request(`${options.ordersUrl}/orders`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
    const text = await response.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // shown as text
    }
    return { status: response.statusCode, body };
  }

  async function revokeAndMeasure(session: BffSession): Promise<RevocationMeasure> {
    const sentAt = performance.now();
    let summary: RevocationSummary;
    try {
      summary = await options.admin.revokeSessions(session.claims.sub!);
    } catch (error) {
      return { error: (error as Error).message, calls: 0 };
    }
    const adminAnsweredMs = performance.now() - sentAt;
    const deadline = Date.now() + (options.refusalTimeoutMs ?? 10_000);
    let calls = 0;
    while (Date.now() < deadline) {
      const answer = await callOrders(session.accessToken);
      calls++;
      if (answer.status !== 200) return { summary, adminAnsweredMs, refusedAfterMs: performance.now() - sentAt, refusal: answer, calls };
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { summary, adminAnsweredMs, calls };
  }

  const resultHtml = (entry: Held | undefined) => {
    if (!entry) return '';
    let html = '';
    const r = entry.revocation;
    if (r) {
      html += '<h2>Revocation</h2><p id="revocation-result">';
      if (r.error) html += `The admin API refused: ${escape(r.error)}`;
      else if (r.refusedAfterMs === undefined) html += `Sessions revoked, but the proxy still accepted the old token after ${r.calls} calls (10 s): <strong>not refused</strong>.`;
      else
        html +=
          `Sessions revoked (admin API answered in ${r.adminAnsweredMs!.toFixed(0)} ms). ` +
          `The orders API refused the old access token <strong id="refused-after">${r.refusedAfterMs.toFixed(0)} ms</strong> after the revocation was requested ` +
          `(HTTP ${r.refusal!.status}, call ${r.calls}), although the token itself is valid until it expires.`;
      html += '</p>';
      if (r.summary) html += `<pre id="revocation-summary">${escape(JSON.stringify(r.summary, null, 2))}</pre>`;
    }
    const c = entry.lastCall;
    if (c) {
      html +=
        `<h2>Last orders API call</h2><p id="orders-status">${c.oldToken ? 'With the old (revoked) token: ' : ''}HTTP <strong>${c.status}</strong> ${c.status === 200 ? 'allowed' : 'refused'} at ${escape(c.at)}</p>` +
        `<pre id="orders-result">${escape(JSON.stringify(c.body, null, 2))}</pre>`;
    }
    return html;
  };

  return {
    home({ cookieId, session }) {
      const entry = cookieId ? held.get(cookieId) : undefined;
      const feed = `<p id="feed"><small>${escape(options.feed)}</small></p>`;
      if (session) {
        return (
          '<h2>Orders API (behind the continuous-authorization proxy)</h2>' +
          '<form method="post" action="/demo/orders"><button id="call-orders" type="submit">Call the orders API</button></form>' +
          '<form method="post" action="/demo/revoke"><button id="revoke-sessions" type="submit">Revoke my sessions</button> ' +
          '<small>(as an administrator would: admin API <code>DELETE /admin/users/{id}/sessions</code>, token by client credentials over mTLS as admin-cli)</small></form>' +
          feed +
          resultHtml(entry)
        );
      }
      if (!entry) return '';
      return (
        `<h2>Your sessions were revoked</h2><p>Custos ended this BFF session too (back-channel logout). The BFF kept ${escape(entry.username)}'s old access token to show what the orders API does with it.</p>` +
        '<form method="post" action="/demo/orders"><button id="call-orders" type="submit">Call the orders API with the old token</button></form>' +
        feed +
        resultHtml(entry)
      );
    },
    async handle(req: IncomingMessage, res: ServerResponse, { url, cookieId, session }) {
      if (req.method !== 'POST' || !url.pathname.startsWith('/demo/')) return false;
      const entry = cookieId ? held.get(cookieId) : undefined;
      if (url.pathname === '/demo/orders') {
        const token = session?.accessToken ?? entry?.accessToken;
        if (!token || !cookieId) return redirectHome(res);
        const answer = await callOrders(token);
        const record = entry && entry.accessToken === token ? entry : { username: String(session?.claims.preferred_username ?? session?.claims.sub), accessToken: token };
        record.lastCall = { at: new Date().toISOString(), ...answer, oldToken: !session };
        held.set(cookieId, record);
        return redirectHome(res);
      }
      if (url.pathname === '/demo/revoke') {
        if (!session || !cookieId) return redirectHome(res);
        const record: Held = { username: String(session.claims.preferred_username ?? session.claims.sub), accessToken: session.accessToken };
        held.set(cookieId, record);
        record.revocation = await revokeAndMeasure(session);
        if (record.revocation.refusal) record.lastCall = { at: new Date().toISOString(), ...record.revocation.refusal, oldToken: true };
        return redirectHome(res);
      }
      return false;
    },
    close: () => agent.close(),
  };
}
