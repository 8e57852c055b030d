/**
 * The wait of a loop that NOTIFY can wake (the event relay, the SSF push deliverer): `sleep`
 * ends early on `wake` (a wake that came while the loop was busy ends the next sleep at once,
 * until `clear`), `sleepIgnoringWake` (a backoff) ends early only on `stop`, and after `stop`
 * every sleep returns at once.
 */
export interface WakeableSleep {
  wake(): void;
  clear(): void;
  sleep(ms: number): Promise<void>;
  sleepIgnoringWake(ms: number): Promise<void>;
  stop(): void;
}

export function createWakeableSleep(): WakeableSleep {
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let stopped = false;
  const wait = (ms: number, endsOnWake: boolean) =>
    new Promise<void>((resolve) => {
      if (stopped || (endsOnWake && woken)) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = () => {
        if (endsOnWake || stopped) done();
      };
    });
  return {
    wake() {
      woken = true;
      wakeUp?.();
    },
    clear() {
      woken = false;
    },
    sleep: (ms) => wait(ms, true),
    sleepIgnoringWake: (ms) => wait(ms, false),
    stop() {
      stopped = true;
      wakeUp?.();
    },
  };
}
