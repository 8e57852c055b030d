import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argon2ThreadsPerWorker, availableCores, cgroupCpuLimit, poolPerWorker, workerCount } from '../../../src/cluster/sizing.js';
import { loadEnv } from '../../../src/config/load-config.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-sizing-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** A fake cgroup v2 tree (`cpu.max` per level, undefined = no file) and a /proc/self/cgroup naming `own`. */
async function cgroupTree(name: string, own: string, limits: Record<string, string>) {
  const root = path.join(work, name);
  for (const [dir, cpuMax] of Object.entries(limits)) {
    await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, dir, 'cpu.max'), `${cpuMax}\n`);
  }
  await mkdir(path.join(root, own), { recursive: true });
  const proc = path.join(work, `${name}.cgroup`);
  await writeFile(proc, `0::${own}\n`);
  return [root, proc] as const;
}

describe('WORKERS and the cores it defaults to (issue 21 #1)', () => {
  it('a cgroup v2 quota caps the cores: its own or an ancestor, whichever is smaller, rounded down, at least one', async () => {
    expect(cgroupCpuLimit(...(await cgroupTree('own', '/pod/app', { '/pod/app': '200000 100000' })))).toBe(2);
    expect(cgroupCpuLimit(...(await cgroupTree('parent', '/pod/app', { '/pod': '150000 100000', '/pod/app': 'max 100000' })))).toBe(1);
    expect(cgroupCpuLimit(...(await cgroupTree('tiny', '/', { '/': '20000 100000' })))).toBe(1);
    expect(cgroupCpuLimit(...(await cgroupTree('none', '/user.slice', { '/user.slice': 'max 100000' })))).toBeUndefined();
    expect(cgroupCpuLimit(path.join(work, 'nowhere'), path.join(work, 'no-proc-file'))).toBeUndefined();
  });

  it('unset, WORKERS is the cores available (affinity and quota), 1 under NODE_ENV=test; set, it wins', () => {
    expect(availableCores()).toBeGreaterThanOrEqual(1);
    expect(availableCores()).toBeLessThanOrEqual(os.availableParallelism());
    expect(workerCount(loadEnv({ NODE_ENV: 'production' }), 6)).toBe(6);
    expect(workerCount(loadEnv({}), 6)).toBe(6);
    expect(workerCount(loadEnv({ NODE_ENV: 'test' }), 6)).toBe(1);
    expect(workerCount(loadEnv({ NODE_ENV: 'test', WORKERS: '3' }), 6)).toBe(3);
    expect(workerCount(loadEnv({ NODE_ENV: 'production', WORKERS: '1' }), 6)).toBe(1);
  });

  it('refuses a WORKERS that is not a whole number from 1 to 256, naming the variable', () => {
    for (const value of ['0', '1.5', 'all', '-2', '257']) expect(() => loadEnv({ WORKERS: value })).toThrow(/WORKERS/);
  });

  it('divides the pool and the argon2 threads among the workers', () => {
    expect(poolPerWorker(20, 1)).toBe(20);
    expect(poolPerWorker(20, 2)).toBe(10);
    expect(poolPerWorker(20, 3)).toBe(6);
    expect(poolPerWorker(4, 8)).toBe(1);
    expect(argon2ThreadsPerWorker(2, 1)).toBe(2);
    expect(argon2ThreadsPerWorker(2, 2)).toBe(1);
    expect(argon2ThreadsPerWorker(16, 4)).toBe(2);
    expect(argon2ThreadsPerWorker(8, 8)).toBe(1);
    expect(argon2ThreadsPerWorker(1, 1)).toBe(1);
  });
});
