import { describe, expect, it } from 'vitest';
import { createWakeableSleep } from '../../../src/events/wakeable-sleep.js';

describe('createWakeableSleep', () => {
  // Every sleep below is 10 s, longer than the test may run: each must end early.
  it('ends a sleep on wake, keeps a wake for the next sleep until clear, and ends everything on stop', async () => {
    const waits = createWakeableSleep();
    const sleeping = waits.sleep(10_000);
    waits.wake();
    await sleeping;
    await waits.sleep(10_000); // the wake is still pending
    waits.clear();
    const backoff = waits.sleepIgnoringWake(10_000);
    waits.wake(); // a backoff does not end on wake…
    const raced = await Promise.race([backoff.then(() => 'ended'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 50))]);
    expect(raced).toBe('waiting');
    waits.stop(); // …only on stop
    await backoff;
    await waits.sleep(10_000);
  });
});
