/** How a {@link createStatementBatcher} groups calls. */
export interface BatcherOptions {
  /** Most items in one statement. */
  maxBatch: number;
  /** Most statements running at once; calls made meanwhile wait and go together in the next. */
  maxInFlight: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs concurrent calls of one statement together (application-level group commit): a call runs
 * at once when fewer than `maxInFlight` statements are running, else it waits for the next
 * statement, which takes everything waiting (up to `maxBatch` items). No timer: a lone call is
 * never delayed, and under load many calls share one round trip, one parse/execute and one
 * commit. `run` answers one result per item, in order; when it fails, every call of that
 * statement fails with its error.
 */
export function createStatementBatcher<I, O>(run: (items: I[]) => Promise<O[]>, options: BatcherOptions): (item: I) => Promise<O> {
  if (!(options.maxBatch >= 1 && options.maxInFlight >= 1)) throw new RangeError('maxBatch and maxInFlight must be at least 1');
  let waiting: Array<Pending<I, O>> = [];
  let inFlight = 0;

  function dispatch(): void {
    const batch = waiting.length <= options.maxBatch ? waiting : waiting.slice(0, options.maxBatch);
    waiting = batch === waiting ? [] : waiting.slice(options.maxBatch);
    inFlight++;
    run(batch.map((pending) => pending.item))
      .then(
        (results) => {
          if (results.length !== batch.length) throw new Error(`statement batch answered ${results.length} results for ${batch.length} items`);
          batch.forEach((pending, i) => pending.resolve(results[i]!));
        },
      )
      .catch((error: unknown) => {
        for (const pending of batch) pending.reject(error);
      })
      .finally(() => {
        inFlight--;
        if (waiting.length > 0) dispatch();
      });
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (inFlight < options.maxInFlight) dispatch();
    });
}
