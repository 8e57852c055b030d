import type { Context } from 'koa';
import { AppError } from './app-error.js';

/** RFC 9110 §7.2 `Host` = uri-host [ ":" port ]: a DNS name, an IPv4 address or a bracketed IPv6 literal. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

/**
 * Pins every request to the configured issuer before anything builds a URL from it: the
 * `Host` header and an absolute-form request target (RFC 9112 §3.2.2) are replaced by the
 * issuer's origin, so discovery, redirects, `Location` headers, logout and interaction URLs
 * all derive from the issuer, never from what a client (or a cache in front) sent. A
 * well-formed but different `Host` (a health probe on 127.0.0.1, a proxy passing its upstream
 * name) is served with the issuer's URLs; a missing, repeated or malformed one gets 400
 * (RFC 9112 §3.2).
 */
export function pinToIssuer(issuer: string): (ctx: Context) => void {
  const { host } = new URL(issuer);
  return (ctx) => {
    const { req } = ctx;
    let hosts = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
    if (hosts !== 1 || !HOST.test(req.headers.host ?? '')) {
      ctx.set('Connection', 'close');
      throw new AppError('invalid_request', 'the Host header must name one host (RFC 9112 §3.2)');
    }
    if (!req.url?.startsWith('/')) {
      // Absolute form (`GET https://other.example/path`): keep the path and query only.
      const target = URL.parse(req.url ?? '');
      if (!target) throw new AppError('invalid_request', 'unsupported request target');
      ctx.url = `${target.pathname}${target.search}`;
      ctx.originalUrl = ctx.request.originalUrl = ctx.url;
    }
    req.headers.host = host;
  };
}
