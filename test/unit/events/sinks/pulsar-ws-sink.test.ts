import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createPulsarWsSink } from '../../../../src/events/sinks/pulsar-ws-sink.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('pulsar-ws sink errors', () => {
  it('name only the broker host, never credentials or the rest of the URL', async () => {
    const port = await closedPort();
    const sink = createPulsarWsSink({
      url: `ws://user:s3cret-pass@127.0.0.1:${port}/prefix?token=s3cret-query`,
      topic: 'persistent://public/default/custos-test',
      producerName: 'custos-test',
      sendTimeoutMs: 1000,
      connectTimeoutMs: 1000,
    });
    const result = await sink.publish([{ sequenceId: 1, eventId: 'e1', type: 'session-revoked', key: 'u1', set: 'x.y.z' }]);
    await sink.close();
    expect(result.error?.message).toContain(`cannot reach Pulsar at 127.0.0.1:${port}`);
    expect(result.error?.message).not.toMatch(/s3cret|user:/);
  });
});
