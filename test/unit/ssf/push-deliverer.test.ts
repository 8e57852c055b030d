import { describe, expect, it } from 'vitest';
import { classifyPushAnswer, mapWithConcurrency } from '../../../src/ssf/push-deliverer.js';

describe('classifyPushAnswer (RFC 8935 §2.3 answers)', () => {
  it.each([
    [202, undefined, 'delivered'],
    [200, undefined, 'delivered'],
    [400, 'invalid_key', 'transient'],
    [408, undefined, 'transient'],
    [425, undefined, 'transient'],
    [429, undefined, 'transient'],
    [500, undefined, 'transient'],
    [503, undefined, 'transient'],
    [400, 'invalid_request', 'permanent'],
    [400, 'invalid_issuer', 'permanent'],
    [400, 'invalid_audience', 'permanent'],
    [400, undefined, 'permanent'],
    [401, 'authentication_failed', 'permanent'],
    [403, 'access_denied', 'permanent'],
    [404, undefined, 'permanent'],
    [301, undefined, 'permanent'],
  ] as const)('HTTP %i %s → %s', (status, err, kind) => {
    expect(classifyPushAnswer(status, err)).toBe(kind);
  });
});

describe('mapWithConcurrency (SSF_PUSH_CONCURRENCY)', () => {
  it('runs at most `limit` calls at once, starts the next when one ends, keeps the order of results', async () => {
    const release = new Map<number, () => void>();
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    const done = mapWithConcurrency([1, 2, 3, 4, 5], 2, async (item) => {
      started.push(item);
      running += 1;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => release.set(item, resolve));
      running -= 1;
      return item * 10;
    });
    await settle();
    expect(started).toEqual([1, 2]);
    release.get(2)!();
    await settle();
    expect(started).toEqual([1, 2, 3]);
    for (const item of [1, 3, 4, 5]) {
      await settle();
      release.get(item)!();
    }
    expect(await done).toEqual([10, 20, 30, 40, 50]);
    expect(most).toBe(2);
  });

  it('handles no items and a limit above their number', async () => {
    expect(await mapWithConcurrency([], 16, async (x: number) => x)).toEqual([]);
    expect(await mapWithConcurrency([1, 2], 16, async (x) => x + 1)).toEqual([2, 3]);
  });
});
