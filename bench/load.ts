/**
 * Load generator, run as its own process by `bench/run.ts` (never in the server's process).
 * Reads one {@link LoadJob} as JSON from the file named by argv[2], drives a keep-alive undici Pool on loopback
 * and prints one {@link LoadResult} as JSON on stdout.
 *
 * Closed loop (default): `connections` loops each send the next request when the previous one
 * answered. Open loop (`rate`): requests are started on a fixed schedule and latency is counted
 * from the scheduled start, so queueing inside the generator is not hidden (coordinated omission).
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

export interface LoadJob {
  /** `https://127.0.0.1:<port>`; only loopback targets are accepted. */
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Request bodies to rotate through instead of `body` (e.g. one subject token each). */
  bodies?: string[];
  /** Extra headers per request, used in turn, each once (e.g. one DPoP proof each); the run stops when they are used up. */
  headerSets?: Record<string, string>[];
  connections: number;
  /** Upper bound of the run, in seconds. */
  seconds: number;
  /** Stop after this many completed requests (memory scenario). */
  maxRequests?: number;
  /** Open-loop rate in requests/s; closed loop when absent. */
  rate?: number;
  /** Seconds of unmeasured warm-up (connections, JIT) before measuring. */
  warmupSeconds?: number;
  /** Instead of `warmupSeconds`: warm up until this time (epoch ms), so two processes measure the same window. */
  startAt?: number;
  tls: { ca: string; cert?: string; key?: string };
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** Non-2xx answers by status, plus `network` for failed requests. */
  failures: Record<string, number>;
  seconds: number;
  /** Latencies in microseconds, one per completed request (merged across rounds by the runner). */
  latenciesUs: number[];
  /** CPU seconds (user + system) of this load generator process, start-up and warm-up included: it shares the cores with the servers. */
  cpuSeconds: number;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

async function run(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.origin);
  if (!LOOPBACK.has(url.hostname)) throw new Error(`load generator refuses non-loopback target ${url.hostname}`);
  const pool = new Pool(job.origin, {
    connections: job.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: { ca: job.tls.ca, cert: job.tls.cert, key: job.tls.key, servername: 'localhost' },
  });
  const bodies = job.bodies ?? (job.body !== undefined ? [job.body] : [undefined]);
  let next = 0;
  let nextHeaders = 0;
  const headerSets = job.headerSets;
  const once = async (): Promise<number> => {
    const body = bodies[next++ % bodies.length];
    let headers = job.headers;
    if (headerSets) {
      const extra = headerSets[nextHeaders++];
      if (!extra) throw new Error('header sets used up');
      headers = { ...job.headers, ...extra };
    }
    const response = await pool.request({ method: job.method, path: job.path, headers, body });
    await response.body.dump({ limit: Infinity }).catch(() => response.body.text());
    return response.statusCode;
  };

  // Warm-up: open every connection (TLS handshakes) and let the server's JIT settle.
  const warmupUntil = performance.now() + (job.startAt !== undefined ? Math.max(0, job.startAt - Date.now()) : (job.warmupSeconds ?? 1) * 1000);
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (performance.now() < warmupUntil) await once().catch(() => 0);
    }),
  );

  const latenciesUs: number[] = [];
  const failures: Record<string, number> = {};
  let errors = 0;
  const record = (status: number | 'network', startedMs: number) => {
    latenciesUs.push(Math.round((performance.now() - startedMs) * 1000));
    if (status !== 'network' && status >= 200 && status < 300) return;
    errors += 1;
    failures[String(status)] = (failures[String(status)] ?? 0) + 1;
  };
  const max = Math.min(job.maxRequests ?? Infinity, headerSets ? headerSets.length - nextHeaders : Infinity);
  const start = performance.now();
  const deadline = start + job.seconds * 1000;

  if (job.rate === undefined) {
    await Promise.all(
      Array.from({ length: job.connections }, async () => {
        while (performance.now() < deadline && latenciesUs.length < max) {
          const started = performance.now();
          record(await once().catch(() => 'network' as const), started);
        }
      }),
    );
  } else {
    const intervalMs = 1000 / job.rate;
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    while (performance.now() < deadline && sent < max) {
      const due = Math.min(Math.floor((performance.now() - start) / intervalMs) + 1, max);
      for (; sent < due; sent++) {
        const scheduled = start + sent * intervalMs;
        const request: Promise<void> = once()
          .catch(() => 'network' as const)
          .then((status) => record(status, scheduled))
          .finally(() => inFlight.delete(request));
        inFlight.add(request);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(inFlight);
  }
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  const cpu = process.cpuUsage();
  return { requests: latenciesUs.length, errors, failures, seconds, latenciesUs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const job = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadJob;
process.stdout.write(JSON.stringify(await run(job)));
