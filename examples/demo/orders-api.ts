/**
 * The demo's orders API: a plain HTTP backend on loopback that trusts `x-authenticated-user`,
 * reachable only through the continuous-authorization proxy (examples/proxy/).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { startContinuousAuthProxy, type RevocationFeed, type RunningProxy } from '../proxy/continuous-auth-proxy.js';

export const ORDERS_RESOURCE = 'https://api.custos.test/orders';

export interface OrdersApiOptions {
  issuer: string;
  caPem: string;
  tls: { certPem: string; keyPem: string; clientCaPem: string };
  feed: RevocationFeed;
  log?: (line: string) => void;
}

export interface RunningOrdersApi {
  /** The proxy's URL (the only way in). */
  url: string;
  proxy: RunningProxy;
  stop(): Promise<void>;
}

export async function startOrdersApi(options: OrdersApiOptions): Promise<RunningOrdersApi> {
  const backend = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const user = req.headers['x-authenticated-user'];
    res.end(JSON.stringify({ orders: [{ id: 'o-1001', item: 'espresso beans', amount: 4200 }], path: req.url, user }));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const trustDevCa = new Agent({ connect: { ca: options.caPem } });
  const proxy = await startContinuousAuthProxy({
    issuer: options.issuer,
    audience: ORDERS_RESOURCE,
    jwksUri: `${options.issuer}/jwks`,
    fetch: ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch,
    feed: options.feed,
    backendUrl: `http://127.0.0.1:${(backend.address() as AddressInfo).port}`,
    tls: options.tls,
    // The BFF presents the user's bearer token (web-bff authenticates with a secret, so no RFC 8705 binding).
    requireBinding: false,
    log: options.log,
  });
  return {
    url: proxy.url,
    proxy,
    async stop() {
      await proxy.stop();
      backend.closeAllConnections();
      await new Promise<void>((resolve) => backend.close(() => resolve()));
      await trustDevCa.close();
    },
  };
}
