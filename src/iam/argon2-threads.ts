import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Algorithm } from '@node-rs/argon2';

/** `Algorithm.Argon2id` (a const enum the package declares but does not export at run time). */
export const ARGON2ID = 2 as Algorithm.Argon2id;

/** argon2id cost (RFC 9106 §4). */
export interface Argon2Cost {
  /** KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** The argon2id cost of passwords and client secrets unless configured: OWASP's baseline (19 MiB, t=2, p=1). */
export const DEFAULT_ARGON2_COST: Argon2Cost = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/**
 * argon2id on dedicated worker threads (`@node-rs/argon2`, synchronous inside the thread), so
 * none of it runs on the event loop: an asynchronous call of the library spends ~1 ms of the
 * event loop per 19 MiB verification before handing the rest to libuv's pool, and libuv's pool
 * threads also serve TLS and file work. The threads run at a lower scheduling priority (a higher
 * nice value, Linux applies it per thread), so when the cores are busy, token requests on the
 * event loop come first and sign-ins wait.
 */
export interface Argon2Threads {
  /** A PHC-format argon2id hash of `password` with a fresh random salt. */
  hash(password: string, cost: Argon2Cost): Promise<string>;
  /**
   * Whether `password` matches the argon2id `hash` (constant-time compare in the library, the
   * hash's own cost and salt); false for a malformed or non-argon2id hash. Rejects only when the
   * thread fails, which is not a wrong password.
   */
  verify(hash: string, password: string): Promise<boolean>;
  /** Stops the threads; later calls start new ones. */
  close(): Promise<void>;
}

export interface Argon2ThreadsOptions {
  /** Threads (each computes one hash at a time and holds its `memoryCost` while it does). */
  threads?: number;
  /** Nice value of the threads (0 = same as the event loop). */
  priority?: number;
}

type Job = { op: 'hash'; password: string; options: Argon2Cost & { algorithm: Algorithm } } | { op: 'verify'; hash: string; password: string };
type Reply = { id: number; value?: string | boolean; error?: string };

// Plain CommonJS, evaluated by each thread: no loader (tsx, vitest) needed to start it.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const argon2 = require(workerData.library);
try { require('node:os').setPriority(workerData.priority); } catch {}
parentPort.on('message', ({ id, job }) => {
  if (job.op === 'verify') {
    let value = false;
    try { value = argon2.verifySync(job.hash, job.password); } catch {} // a malformed hash matches nothing
    parentPort.postMessage({ id, value });
    return;
  }
  try {
    parentPort.postMessage({ id, value: argon2.hashSync(job.password, job.options) });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

interface Thread {
  worker: Worker;
  /** The job it computes, if any. */
  busy?: { id: number; resolve(value: string | boolean): void; reject(error: Error): void };
}

/** Starts threads on demand (up to `threads`); idle threads do not keep the process alive. */
export function createArgon2Threads(options: Argon2ThreadsOptions = {}): Argon2Threads {
  const size = options.threads ?? 2;
  const library = createRequire(import.meta.url).resolve('@node-rs/argon2');
  const threads = new Set<Thread>();
  const waiting: Array<{ job: Job; resolve(value: string | boolean): void; reject(error: Error): void }> = [];
  let nextId = 0;

  function start(): Thread {
    const worker = new Worker(THREAD_SOURCE, { eval: true, execArgv: [], workerData: { library, priority: options.priority ?? 10 } });
    const thread: Thread = { worker };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const busy = thread.busy;
      if (!busy || busy.id !== reply.id) return;
      thread.busy = undefined;
      worker.unref();
      if (reply.error !== undefined) busy.reject(new Error(`argon2: ${reply.error}`));
      else busy.resolve(reply.value!);
      dispatch();
    });
    const gone = (error: Error) => {
      if (!threads.delete(thread)) return;
      thread.busy?.reject(error);
      thread.busy = undefined;
      dispatch();
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`argon2 thread exited (${code})`)));
    threads.add(thread);
    return thread;
  }

  function dispatch(): void {
    while (waiting.length > 0) {
      let idle = [...threads].find((thread) => !thread.busy);
      if (!idle && threads.size < size) idle = start();
      if (!idle) return;
      const { job, resolve, reject } = waiting.shift()!;
      const id = nextId++;
      idle.busy = { id, resolve, reject };
      idle.worker.ref(); // a pending hash keeps the process alive
      idle.worker.postMessage({ id, job });
    }
  }

  function run<T extends string | boolean>(job: Job): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      waiting.push({ job, resolve: resolve as (value: string | boolean) => void, reject });
      dispatch();
    });
  }

  return {
    hash: (password, cost) => run<string>({ op: 'hash', password, options: { ...cost, algorithm: ARGON2ID } }),
    async verify(hash, password) {
      if (!hash.startsWith('$argon2id$')) return false;
      return run<boolean>({ op: 'verify', hash, password });
    },
    async close() {
      const all = [...threads];
      threads.clear();
      for (const thread of all) thread.busy?.reject(new Error('argon2 threads closed'));
      await Promise.all(all.map((thread) => thread.worker.terminate()));
    },
  };
}
