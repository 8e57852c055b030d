import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  /** CA bundle that client certificates are validated against (RFC 8705 §2.1). */
  clientCaPem: string;
}

/**
 * An HTTPS listener that requests a client certificate but does not require one
 * (browsers have none); whether it chains to the CA is decided per request.
 */
export async function listenHttps(
  handler: RequestListener,
  tls: TlsMaterial,
  options: { host: string; port: number; requireClientCert?: boolean },
): Promise<{ server: https.Server; port: number }> {
  const server = https.createServer(
    {
      cert: tls.certPem,
      key: tls.keyPem,
      ca: tls.clientCaPem,
      requestCert: true,
      rejectUnauthorized: options.requireClientCert ?? false,
      minVersion: 'TLSv1.2',
      // Slow clients: a TLS handshake, the headers and the whole request each have a bound, and
      // Node checks the header and request bounds every second (its default is every 30 s).
      handshakeTimeout: 10_000,
      keepAliveTimeout: 5_000,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      connectionsCheckingInterval: 1_000,
    },
    handler,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Stops accepting, lets in-flight requests finish, then cuts what is left after `timeoutMs`. */
export async function closeServer(server: https.Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
  timer.unref();
  await closed;
  clearTimeout(timer);
}
