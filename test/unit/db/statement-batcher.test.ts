import { describe, expect, it } from 'vitest';
import { createStatementBatcher } from '../../../src/db/statement-batcher.js';

/** A statement whose runs finish when the test says so; records what each run was given. */
function controlledStatement<I>() {
  const runs: Array<{ items: I[]; finish: (results: unknown[]) => void; fail: (error: Error) => void }> = [];
  const run = (items: I[]) =>
    new Promise<unknown[]>((resolve, reject) => {
      runs.push({ items, finish: resolve, fail: reject });
    });
  return { runs, run };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('statement batcher', () => {
  it('runs a lone call at once, without waiting for company', async () => {
    const statement = controlledStatement<number>();
    const call = createStatementBatcher(statement.run, { maxBatch: 8, maxInFlight: 1 });
    const answer = call(1);
    expect(statement.runs.map((run) => run.items)).toEqual([[1]]);
    statement.runs[0]!.finish(['one']);
    expect(await answer).toBe('one');
  });

  it('groups the calls made while statements run into the next statement, at most maxBatch each', async () => {
    const statement = controlledStatement<number>();
    const call = createStatementBatcher(statement.run, { maxBatch: 3, maxInFlight: 2 });
    const answers = [1, 2, 3, 4, 5, 6, 7].map((item) => call(item));
    // Two run at once; the five others wait.
    expect(statement.runs.map((run) => run.items)).toEqual([[1], [2]]);

    statement.runs[0]!.finish(['r1']);
    await settle();
    expect(statement.runs.map((run) => run.items)).toEqual([[1], [2], [3, 4, 5]]);
    statement.runs[1]!.finish(['r2']);
    await settle();
    expect(statement.runs.map((run) => run.items)).toEqual([[1], [2], [3, 4, 5], [6, 7]]);
    statement.runs[2]!.finish(['r3', 'r4', 'r5']);
    statement.runs[3]!.finish(['r6', 'r7']);
    // Each call gets the result at its own position.
    expect(await Promise.all(answers)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);

    // Idle again: the next call runs at once.
    const later = call(8);
    expect(statement.runs).toHaveLength(5);
    statement.runs[4]!.finish(['r8']);
    expect(await later).toBe('r8');
  });

  it('fails every call of a failed statement, and only those', async () => {
    const statement = controlledStatement<string>();
    const call = createStatementBatcher(statement.run, { maxBatch: 10, maxInFlight: 1 });
    const first = call('a');
    const waiting = [call('b'), call('c')];
    statement.runs[0]!.finish(['A']);
    expect(await first).toBe('A');
    await settle();
    expect(statement.runs[1]!.items).toEqual(['b', 'c']);
    statement.runs[1]!.fail(new Error('connection lost'));
    for (const answer of waiting) await expect(answer).rejects.toThrow('connection lost');
    // The batcher keeps working after a failure.
    const after = call('d');
    statement.runs[2]!.finish(['D']);
    expect(await after).toBe('D');
  });

  it('fails the calls when the statement answers another number of results than items', async () => {
    const statement = controlledStatement<string>();
    const call = createStatementBatcher(statement.run, { maxBatch: 10, maxInFlight: 1 });
    const answer = call('a');
    statement.runs[0]!.finish(['A', 'extra']);
    await expect(answer).rejects.toThrow(/2 results for 1 items/);
  });

  it('refuses bounds below one', () => {
    const statement = controlledStatement<string>();
    expect(() => createStatementBatcher(statement.run, { maxBatch: 0, maxInFlight: 1 })).toThrow(RangeError);
    expect(() => createStatementBatcher(statement.run, { maxBatch: 1, maxInFlight: 0 })).toThrow(RangeError);
  });
});
