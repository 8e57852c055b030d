import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createArgon2Threads } from '../../../src/iam/argon2-threads.js';

const cheap = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const threads = createArgon2Threads({ threads: 2 });
afterAll(() => threads.close());

/** Nice value of a thread (Linux /proc stat field 19). */
const niceOf = (statPath: string) => Number(readFileSync(statPath, 'utf8').split(') ')[1]!.split(' ')[16]);
/** Nice values of this process's threads. */
const niceValues = () => readdirSync('/proc/self/task').map((tid) => niceOf(`/proc/self/task/${tid}/stat`));

describe('argon2 threads', () => {
  it('hash with argon2id at the given cost (fresh salt each time) and verify', async () => {
    const [one, two] = await Promise.all([threads.hash('correct horse battery staple', cheap), threads.hash('correct horse battery staple', cheap)]);
    expect(one).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(two).not.toBe(one);
    expect(await threads.verify(one, 'correct horse battery staple')).toBe(true);
    expect(await threads.verify(two, 'correct horse battery stapl')).toBe(false);
  });

  it('verify hashes written before (the other PHC parameter order of the previous argon2 library)', async () => {
    // The demo web-bff secret's hash in config/clients.json, as stored since issue 7.
    const previous = '$argon2id$v=19$m=19456,p=1,t=2$ngXTuqlyKFpv5u9ao2QQmw$9puTsKQaRos3KKaXLMwz4bM1momfF6RyrKnH3mNKOFs';
    expect(await threads.verify(previous, 'dev-web-bff-secret-change-me')).toBe(true);
    expect(await threads.verify(previous, 'dev-web-bff-secret-change-mE')).toBe(false);
  });

  it('a malformed or non-argon2id hash matches nothing, without failing', async () => {
    expect(await threads.verify('$argon2id$garbage', 'x')).toBe(false);
    expect(await threads.verify('$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$abc', 'x')).toBe(false);
    expect(await threads.verify('plaintext', 'plaintext')).toBe(false);
  });

  it('compute on threads below the event loop’s priority, and start again after close', async () => {
    const own = createArgon2Threads({ threads: 1, priority: 7 });
    const before = niceValues().filter((nice) => nice === 7).length;
    expect(await own.verify(await own.hash('pw-for-priority', cheap), 'pw-for-priority')).toBe(true);
    expect(niceValues().filter((nice) => nice === 7).length).toBe(before + 1);
    expect(niceOf('/proc/thread-self/stat')).toBe(0); // the event loop's thread keeps its priority
    await own.close();
    expect(niceValues().filter((nice) => nice === 7).length).toBe(before);
    expect(await own.verify(await own.hash('pw-after-close', cheap), 'pw-after-close')).toBe(true);
    await own.close();
  });
});
