import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../../../src/config/load-config.js';
import { loadEnv } from '../../../src/config/load-config.js';
import { createEventSink } from '../../../src/events/events-module.js';
import { createPulsarClientSink, loadPulsarClient, PULSAR_CLIENT_MISSING } from '../../../src/events/sinks/pulsar-client-sink.js';
import { brokerUnavailable, readTopic, testBroker, uniqueTopic } from '../../helpers/pulsar.js';

const clientMissing = await loadPulsarClient().then(
  () => undefined,
  (error: Error) => error.message,
);
if (clientMissing) console.warn(`pulsar-client sink broker test skipped: ${clientMissing.split(' (')[0]}`);

describe('EVENTS_SINK=pulsar (official pulsar-client, optional)', () => {
  it.skipIf(!clientMissing)('without the module, start-up stops with how to install it', async () => {
    const env = loadEnv({ EVENTS_SINK: 'pulsar', PULSAR_SERVICE_URL: 'pulsar://127.0.0.1:6650' });
    await expect(createEventSink({ env } as AppConfig, process.cwd(), pino({ level: 'silent' }))).rejects.toThrow(PULSAR_CLIENT_MISSING);
  });

  it.skipIf(Boolean(clientMissing) || Boolean(brokerUnavailable))('publishes with explicit sequence ids; re-sends are dropped by the broker', async () => {
    const broker = await testBroker();
    const topic = uniqueTopic('native');
    const sink = await createPulsarClientSink({ serviceUrl: broker.serviceUrl, topic, producerName: 'custos-relay', sendTimeoutMs: 5000 });
    const events = [1, 2, 3].map((n) => ({ sequenceId: n, eventId: `e${n}`, type: 'session-revoked', key: 'u1', set: `set-${n}` }));
    expect(await sink.publish(events)).toMatchObject({ acknowledged: 3, duplicates: 0 });
    await sink.close();
    const again = await createPulsarClientSink({ serviceUrl: broker.serviceUrl, topic, producerName: 'custos-relay', sendTimeoutMs: 5000 });
    expect(await again.publish(events.slice(1))).toMatchObject({ acknowledged: 2, duplicates: 2 });
    await again.close();
    const messages = await readTopic(broker, topic, { expect: 3 });
    expect(messages.map((message) => message.payload)).toEqual(['set-1', 'set-2', 'set-3']);
  });
});
