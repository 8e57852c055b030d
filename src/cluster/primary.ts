import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Registry } from 'prom-client';
import { loadConfig, type AppConfig } from '../config/load-config.js';
import { migrateToLatest } from '../db/migrator.js';
import { openDatabase } from '../db/open-database.js';
import { createLogger } from '../http/logger.js';
import { createArgon2Threads } from '../iam/argon2-threads.js';
import { ensureDemoUser } from '../iam/demo-user.js';
import { argon2CostOf, createPasswordHasher } from '../iam/password-hasher.js';
import { createUserService } from '../iam/user.service.js';
import { loadCookieKeys } from '../keys/cookie-keys.js';
import { loadSigningKeys } from '../keys/signing-keys.js';
import type { DevPki } from '../pki/dev-pki.js';
import { loadTls } from '../pki/load-tls.js';
import { isCustosMessage, type MetricsJson, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** Worker deaths within {@link CRASH_WINDOW_MS} that stop the server instead of replacing the worker again. */
export const CRASH_LOOP_DEATHS = 5;
export const CRASH_WINDOW_MS = 30_000;

export interface PrimaryOptions {
  workers: number;
  /**
   * Workers died {@link CRASH_LOOP_DEATHS} times within {@link CRASH_WINDOW_MS}: the primary has
   * logged `message` and stopped every worker (and the embedded PostgreSQL); the caller exits.
   */
  onCrashLoop(message: string): void;
}

/** The primary of a `WORKERS` > 1 server, as `custos serve` uses it (the shape of {@link RunningCustos} it needs). */
export interface RunningPrimary {
  config: AppConfig;
  issuer: string;
  logger: Logger;
  devPki?: DevPki;
  demoUser?: { username: string; password: string };
  /** Every worker reloads its signing keys. */
  reload(): Promise<void>;
  /** Every worker drains and exits; then the embedded PostgreSQL (if started here) stops. */
  stop(): Promise<void>;
}

const send = (worker: Worker, message: PrimaryMessage) => {
  if (worker.isConnected()) worker.send(message);
};

/**
 * The primary process of `WORKERS` > 1 (node:cluster; the workers share the public and admin
 * listeners, the primary hands each new connection to the next worker in turn). It does what
 * must happen once: starts the embedded PostgreSQL when there is no DATABASE_URL, runs the
 * migrations, creates development keys, certificates and the demo user; then forks the workers
 * and waits until each listens. A worker that dies is replaced (one log line); a crash loop calls
 * `onCrashLoop`. It serves no requests and opens no listener itself.
 */
export async function startPrimary(options: PrimaryOptions): Promise<RunningPrimary> {
  const cwd = process.cwd();
  const config = loadConfig(process.env, cwd);
  const { env } = config;
  const logger = createLogger({ level: env.LOG_LEVEL, production: config.production }).child({ role: 'primary' });
  const cleanups: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | undefined;
  // Once, however many reasons to stop arrive (a signal during a crash loop's stop).
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) await fn().catch((error) => logger.error({ err: error }, 'shutdown step failed'));
    })());
  let stopping = false;
  try {
    const { db, url, close } = await openDatabase(config, cwd, {
      info: (message) => logger.info(message),
      debug: (message) => logger.debug({ component: 'postgres' }, message),
    });
    // The pool (idle after start-up) closes, and the embedded PostgreSQL stops, after the workers.
    cleanups.push(close);
    const migrations = await migrateToLatest(db);
    const applied = migrations.results?.map((result) => result.migrationName) ?? [];
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    // Development material is generated here, once, before any worker reads it.
    const { devPki } = await loadTls(config, cwd);
    await loadSigningKeys(config.keysDir, { generate: !config.production });
    await loadCookieKeys(config.keysDir, { fromEnv: env.COOKIE_KEYS, generate: !config.production });
    let demoUser: RunningPrimary['demoUser'];
    if (config.seedDemoData) {
      const argon2 = createArgon2Threads({ threads: 1 });
      demoUser = await ensureDemoUser(db, createUserService({ db, hasher: createPasswordHasher({ cost: argon2CostOf(env), threads: argon2 }) })).finally(argon2.close);
    }

    if (env.DATABASE_POOL_MAX < options.workers) {
      logger.warn(
        { DATABASE_POOL_MAX: env.DATABASE_POOL_MAX, workers: options.workers },
        `DATABASE_POOL_MAX=${env.DATABASE_POOL_MAX} is less than WORKERS=${options.workers}: each worker still opens up to one connection`,
      );
    }
    const own = new Registry();
    const replaced = new Counter({ name: 'custos_workers_replaced_total', help: 'Workers that died and were replaced', registers: [own] });
    const ready = new Set<Worker>();
    const collect = createCollector(() => [...ready]);
    const deaths: number[] = [];
    // The workers' environment: the resolved WORKERS (each sizes its pool share and argon2
    // threads from it) and the database this primary opened.
    const workerEnv = { WORKERS: String(options.workers), DATABASE_URL: url };

    let started = false;
    let startFailure: ((error: Error) => void) | undefined;
    let listening: ((message: Extract<WorkerMessage, { type: 'custos:ready' }>) => void) | undefined;
    cluster.on('message', (worker, message) => {
      if (!isCustosMessage<WorkerMessage>(message)) return;
      if (message.type === 'custos:ready') {
        ready.add(worker);
        listening?.(message);
      } else if (message.type === 'custos:metrics') {
        Promise.all([collect(), own.metrics()]).then(
          ([all, primary]) => send(worker, { type: 'custos:metrics', id: message.id, text: `${all}${all.endsWith('\n') || !all ? '' : '\n'}${primary}` }),
          (error: Error) => send(worker, { type: 'custos:metrics', id: message.id, error: error.message }),
        );
      } else if (message.type === 'custos:collected') {
        collect.answer(worker, message.id, message.metrics);
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      ready.delete(worker);
      collect.gone(worker);
      if (stopping) return;
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      if (!started) {
        startFailure?.(new Error(`worker ${worker.id} (pid ${worker.process.pid}) stopped during start-up (${how}); its error is above`));
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! <= now - CRASH_WINDOW_MS) deaths.shift();
      if (deaths.length >= CRASH_LOOP_DEATHS) {
        const message = `workers died ${deaths.length} times within ${CRASH_WINDOW_MS / 1000} s (the last: worker ${worker.id}, ${how}); stopping the server`;
        stopping = true;
        logger.error(message);
        void cleanup().finally(() => options.onCrashLoop(message));
        return;
      }
      logger.warn({ worker: worker.id, workerPid: worker.process.pid, code, signal }, `worker ${worker.id} (pid ${worker.process.pid}) died (${how}); starting a replacement`);
      replaced.inc();
      cluster.fork(workerEnv);
    });
    cleanups.push(async () => {
      stopping = true;
      await Promise.all(Object.values(cluster.workers ?? {}).map((worker) => stopWorker(worker!, env.SHUTDOWN_TIMEOUT_MS + 5_000)));
    });

    const first = await new Promise<Extract<WorkerMessage, { type: 'custos:ready' }>>((resolve, reject) => {
      let first: Extract<WorkerMessage, { type: 'custos:ready' }> | undefined;
      startFailure = reject;
      listening = (message) => {
        first ??= message;
        if (ready.size === options.workers) resolve(first);
      };
      for (let i = 0; i < options.workers; i++) cluster.fork(workerEnv);
    });
    started = true;
    listening = undefined;
    logger.info({ issuer: first.issuer, port: first.port, adminPort: first.adminPort, pid: process.pid, workers: options.workers }, 'custos listening');
    return {
      config,
      issuer: first.issuer,
      logger,
      devPki,
      demoUser,
      async reload() {
        // Starting workers too: one that read the keys before they changed reloads once it is up.
        const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
        logger.info({ workers: workers.length }, 'reloading signing keys in every worker');
        for (const worker of workers) send(worker, { type: 'custos:reload' });
      },
      async stop() {
        stopping = true;
        await cleanup();
      },
    };
  } catch (error) {
    stopping = true;
    await cleanup();
    throw error;
  }
}

/** SIGTERM (the worker drains), then SIGKILL if it has not exited within `timeoutMs`. */
async function stopWorker(worker: Worker, timeoutMs: number): Promise<void> {
  if (worker.process.exitCode !== null || worker.process.signalCode !== null) return;
  const exited = once(worker.process, 'exit');
  worker.process.kill('SIGTERM');
  const timer = setTimeout(() => worker.process.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Every ready worker's metrics, aggregated as prom-client's cluster mode does (counters and
 * histograms summed per label set; the default process metrics by their own aggregator). Only
 * workers that listen are asked, so one still starting does not hold the answer up.
 */
function createCollector(workers: () => Worker[]) {
  const requests = new Map<number, { waiting: Set<Worker>; responses: MetricsJson[]; done(error?: Error): void }>();
  let next = 0;
  const settle = (id: number) => {
    const request = requests.get(id);
    if (request && request.waiting.size === 0) request.done();
  };
  return Object.assign(
    function collect(): Promise<string> {
      const id = next++;
      const asked = workers();
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => request.done(new Error('a worker did not send its metrics in time')), 5_000);
        const request = {
          waiting: new Set(asked),
          responses: [] as MetricsJson[],
          done(error?: Error) {
            if (!requests.delete(id)) return;
            clearTimeout(timer);
            if (error) reject(error);
            else AggregatorRegistry.aggregate(request.responses).metrics().then(resolve, reject);
          },
        };
        requests.set(id, request);
        for (const worker of asked) send(worker, { type: 'custos:collect', id });
        settle(id);
      });
    },
    {
      answer(worker: Worker, id: number, metrics: MetricsJson) {
        const request = requests.get(id);
        if (!request?.waiting.delete(worker)) return;
        request.responses.push(metrics);
        settle(id);
      },
      /** A worker that exited answers nothing: its metrics are left out (its counters went with it). */
      gone(worker: Worker) {
        for (const [id, request] of requests) if (request.waiting.delete(worker)) settle(id);
      },
    },
  );
}
