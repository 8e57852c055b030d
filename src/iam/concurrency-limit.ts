/**
 * A bound on concurrent expensive work (argon2 holds a libuv thread and ~19 MiB each): at most
 * `maxConcurrent` run, at most `maxQueued` wait, and beyond that `run` answers `undefined` at
 * once instead of queueing, so a flood cannot starve the rest of the server.
 */
export function createConcurrencyLimit(maxConcurrent: number, maxQueued: number) {
  const waiting: Array<() => void> = [];
  let running = 0;

  async function slot(): Promise<boolean> {
    if (running < maxConcurrent) {
      running++;
      return true;
    }
    if (waiting.length >= maxQueued) return false;
    await new Promise<void>((resolve) => waiting.push(resolve));
    return true;
  }

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }

  return {
    /** Runs `work` in a slot; `undefined` when the queue is full. */
    async run<T>(work: () => Promise<T>): Promise<T | undefined> {
      if (!(await slot())) return undefined;
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}
