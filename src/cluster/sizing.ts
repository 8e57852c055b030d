import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../config/env.js';

/**
 * Whole cores a cgroup v2 CPU quota (`cpu.max`, "quota period") allows this process: the
 * smallest over its own cgroup and every ancestor, rounded down (at least 1), or undefined when
 * none is set (or on cgroup v1 only). A container given `--cpus=2` sees 2 here.
 */
export function cgroupCpuLimit(root = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): number | undefined {
  let own: string;
  try {
    const line = readFileSync(procSelfCgroup, 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('0::'));
    if (!line) return undefined;
    own = line.slice(3).trim() || '/';
  } catch {
    return undefined;
  }
  let limit: number | undefined;
  for (let dir = own; ; dir = path.posix.dirname(dir)) {
    try {
      const [quota, period] = readFileSync(path.join(root, dir, 'cpu.max'), 'utf8').trim().split(/\s+/);
      const cores = quota === 'max' ? undefined : Math.max(1, Math.floor(Number(quota) / Number(period)));
      if (cores !== undefined && Number.isFinite(cores)) limit = Math.min(limit ?? cores, cores);
    } catch {
      // no cpu.max at this level (the host's root cgroup has none)
    }
    if (dir === '/') return limit;
  }
}

/** Cores this process may use: its CPU affinity (`os.availableParallelism()`) capped by a cgroup v2 quota. */
export function availableCores(): number {
  return Math.min(os.availableParallelism(), cgroupCpuLimit() ?? Number.POSITIVE_INFINITY);
}

/** Worker processes to run: `WORKERS`, else one per available core (1 under NODE_ENV=test). */
export function workerCount(env: Pick<Env, 'WORKERS' | 'NODE_ENV'>, cores = availableCores()): number {
  return env.WORKERS ?? (env.NODE_ENV === 'test' ? 1 : cores);
}

/** Each worker's share of `DATABASE_POOL_MAX` (the configured total), at least one connection. */
export function poolPerWorker(total: number, workers: number): number {
  return Math.max(1, Math.floor(total / workers));
}

/**
 * argon2 threads of each worker so that all workers' threads together fit the cores: at most the
 * two a single process has, at least one.
 */
export function argon2ThreadsPerWorker(cores: number, workers: number): number {
  return Math.max(1, Math.min(2, Math.floor(cores / workers)));
}
