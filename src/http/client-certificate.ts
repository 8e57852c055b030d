import { X509Certificate } from 'node:crypto';
import type { BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Middleware } from 'koa';
import { parseItem, parseList, type Item } from 'structured-headers';
import { addressAllowed } from './address-allow.js';
import { AppError } from './app-error.js';
import type { AppState } from './middleware.js';
import { peerCertificateOf } from './peer-certificate.js';

/** The client certificate of a request, from the TLS handshake or a trusted proxy. */
export interface ClientCertificateState {
  clientCertificate?: X509Certificate;
  clientCertificateChain?: X509Certificate[];
  clientCertificateSource?: 'tls' | 'proxy';
}

function certificateFromItem(item: Item, header: string): X509Certificate {
  const [value] = item;
  if (!(value instanceof ArrayBuffer)) throw new AppError('invalid_request', `${header} must be a structured-field byte sequence`);
  try {
    return new X509Certificate(Buffer.from(value));
  } catch {
    throw new AppError('invalid_request', `${header} does not hold a DER X.509 certificate`);
  }
}

/** Parses RFC 9440 §2.2 `Client-Cert` (sf-binary of the DER certificate). */
export function parseClientCertHeader(value: string): X509Certificate {
  let item: Item;
  try {
    item = parseItem(value);
  } catch {
    throw new AppError('invalid_request', 'Client-Cert is not a valid structured-field item (RFC 9440)');
  }
  return certificateFromItem(item, 'Client-Cert');
}

/** Parses RFC 9440 §2.3 `Client-Cert-Chain` (sf-list of sf-binary certificates). */
export function parseClientCertChainHeader(value: string): X509Certificate[] {
  let list;
  try {
    list = parseList(value);
  } catch {
    throw new AppError('invalid_request', 'Client-Cert-Chain is not a valid structured-field list (RFC 9440)');
  }
  return list.map((member) => {
    if (Array.isArray(member[0])) throw new AppError('invalid_request', 'Client-Cert-Chain must not contain inner lists');
    return certificateFromItem(member as Item, 'Client-Cert-Chain');
  });
}

/**
 * Resolves the request's client certificate (RFC 8705 §2): the TLS peer certificate, or,
 * only from a configured proxy address, the RFC 9440 `Client-Cert` header (a trusted proxy
 * that sends none may still connect with its own TLS client certificate). From any other
 * address the header is ignored (and logged, at most once per `warnIntervalMs`, with the number
 * of headers ignored since the last line): nothing is trusted for where it comes from.
 */
export function clientCertificate(options: { proxies?: BlockList; warnIntervalMs?: number }): Middleware<AppState & ClientCertificateState> {
  // A flood of such headers must not flood the log: one line per interval, with the count held back.
  const warnIgnored = throttle(options.warnIntervalMs ?? 60_000);
  return function clientCertificateMiddleware(ctx, next) {
    const header = ctx.get('client-cert');
    const remoteAddress = ctx.req.socket.remoteAddress;
    const fromProxy = addressAllowed(options.proxies, remoteAddress);
    if (fromProxy && header) {
      ctx.state.clientCertificate = parseClientCertHeader(header);
      const chain = ctx.get('client-cert-chain');
      ctx.state.clientCertificateChain = chain ? parseClientCertChainHeader(chain) : [];
      ctx.state.clientCertificateSource = 'proxy';
    } else {
      if (header) {
        warnIgnored((alsoIgnored) =>
          ctx.state.log.warn({ remoteAddress, alsoIgnored }, 'Client-Cert header from an untrusted address ignored'),
        );
      }
      const peer = peerCertificateOf(ctx.req.socket as TLSSocket);
      if (peer) {
        ctx.state.clientCertificate = peer;
        ctx.state.clientCertificateChain = [];
        ctx.state.clientCertificateSource = 'tls';
      }
    }
    return next();
  };
}

/** Runs `emit` at most once per `intervalMs`, passing how many calls it skipped since the last one. */
function throttle(intervalMs: number): (emit: (skipped: number) => void) => void {
  let last = -Infinity;
  let skipped = 0;
  return (emit) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    last = now;
    emit(skipped);
    skipped = 0;
  };
}
