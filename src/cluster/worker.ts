import cluster from 'node:cluster';
import { Counter } from 'prom-client';
import { loadEnv } from '../config/load-config.js';
import { startCustos, type RunningCustos, type WorkerRole } from '../main.js';
import { isCustosMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { argon2ThreadsPerWorker, availableCores, poolPerWorker } from './sizing.js';

const send = (message: WorkerMessage) => process.send?.(message);

/**
 * A worker's role: its share of the pool and of the argon2 threads (the primary passes the
 * resolved `WORKERS` in the environment), `/metrics` answered with every worker's metrics (asked
 * of the primary), and a per-worker count of public connections (`custos_worker_connections_total`,
 * labelled with the cluster's worker id, which tells which worker served a connection).
 */
function workerRole(id: number): WorkerRole {
  const env = loadEnv();
  const workers = env.WORKERS ?? 1;
  const pending = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  let next = 0;
  process.on('message', (message) => {
    if (!isCustosMessage<PrimaryMessage>(message) || message.type !== 'custos:metrics') return;
    const request = pending.get(message.id);
    pending.delete(message.id);
    if (message.text !== undefined) request?.resolve(message.text);
    else request?.reject(new Error(message.error ?? 'no metrics'));
  });
  return {
    id,
    poolMax: poolPerWorker(env.DATABASE_POOL_MAX, workers),
    argon2Threads: argon2ThreadsPerWorker(availableCores(), workers),
    metricsText() {
      const requestId = next++;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(requestId);
          reject(new Error('the primary did not answer'));
        }, 10_000);
        const settle = <T>(fn: (value: T) => void) => (value: T) => {
          clearTimeout(timer);
          fn(value);
        };
        pending.set(requestId, { resolve: settle(resolve), reject: settle(reject) });
        send({ type: 'custos:metrics', id: requestId });
      });
    },
    instrument(server, registry) {
      const connections = new Counter({
        name: 'custos_worker_connections_total',
        help: 'TLS connections accepted on the public listener, by worker (the cluster worker id)',
        labelNames: ['worker'],
        registers: [registry],
      }).labels({ worker: String(id) });
      server.on('secureConnection', () => connections.inc());
      process.on('message', (message) => {
        if (!isCustosMessage<PrimaryMessage>(message) || message.type !== 'custos:collect') return;
        registry.getMetricsAsJSON().then(
          (metrics) => send({ type: 'custos:collected', id: message.id, metrics }),
          () => send({ type: 'custos:collected', id: message.id, metrics: [] }),
        );
      });
    },
  };
}

/**
 * `custos serve` in a worker process (WORKERS > 1; the primary is src/cluster/primary.ts):
 * serves the shared listeners, drains on SIGTERM (which the primary sends each worker when it
 * stops), reloads keys when the primary says so (its SIGHUP) or on its own SIGHUP, and ignores
 * SIGINT (a terminal's Ctrl-C reaches the whole process group; the primary decides).
 */
export async function serveWorker(): Promise<void> {
  const id = cluster.worker!.id;
  let custos: RunningCustos | undefined;
  let requested = false;
  let reloadRequested = false;
  let stopping = false;
  const stop = () => {
    requested = true;
    if (!custos || stopping) return;
    stopping = true;
    custos.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const reload = () => {
    // A reload asked for while this worker starts runs once it is up (it may have read the keys before they changed).
    if (!custos) reloadRequested = true;
    else custos.reload().catch((error) => custos?.logger.error({ err: error }, 'reload failed; still serving with the previous keys'));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => {});
  process.on('SIGHUP', reload);
  process.on('message', (message) => {
    if (isCustosMessage<PrimaryMessage>(message) && message.type === 'custos:reload') reload();
  });
  try {
    custos = await startCustos({ worker: workerRole(id) });
  } catch (error) {
    // The CLI prints the cause; without the IPC channel nothing keeps this process alive.
    cluster.worker!.disconnect();
    throw error;
  }
  if (requested) return stop();
  if (reloadRequested) reload();
  send({ type: 'custos:ready', issuer: custos.issuer, port: custos.port, adminPort: custos.adminPort });
}
