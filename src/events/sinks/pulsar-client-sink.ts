import { assertConsecutive, messageProperties, type EventSink, type PublishResult } from './event-sink.js';

/** Options of {@link createPulsarClientSink}. */
export interface PulsarClientSinkOptions {
  /** `pulsar://host:6650` or `pulsar+ssl://host:6651` (PULSAR_SERVICE_URL). */
  serviceUrl: string;
  topic: string;
  producerName: string;
  token?: string;
  /** Path of a PEM CA bundle for `pulsar+ssl://`. */
  tlsCaFile?: string;
  sendTimeoutMs: number;
}

/** The part of the `pulsar-client` module this sink uses (it ships no types we depend on). */
interface PulsarModule {
  Client: new (config: Record<string, unknown>) => PulsarClient;
  AuthenticationToken: new (config: { token: string }) => unknown;
}
interface PulsarClient {
  createProducer(config: Record<string, unknown>): Promise<PulsarProducer>;
  close(): Promise<null>;
}
interface PulsarProducer {
  send(message: Record<string, unknown>): Promise<{ toString(): string }>;
  flush(): Promise<null>;
  close(): Promise<null>;
}

export const PULSAR_CLIENT_MISSING =
  'EVENTS_SINK=pulsar needs the optional package pulsar-client and the native Pulsar C++ client library: ' +
  'install the library (https://pulsar.apache.org/docs/client-libraries-cpp/), then `npm install pulsar-client`; ' +
  'or use EVENTS_SINK=pulsar-ws, which needs nothing native';

/** Loads `pulsar-client` lazily; throws one line saying how to install it when it cannot load. */
export async function loadPulsarClient(): Promise<PulsarModule> {
  const name = 'pulsar-client';
  try {
    const loaded = (await import(name)) as { default?: PulsarModule } & PulsarModule;
    return loaded.default ?? loaded;
  } catch (error) {
    throw new Error(`${PULSAR_CLIENT_MISSING} (${(error as Error).message.split('\n')[0]})`);
  }
}

/**
 * `EVENTS_SINK=pulsar`: the official Node.js client (binary protocol). Same producer semantics as
 * `pulsar-ws`: fixed producer name, key = subject, properties = type and id, explicit sequence ids;
 * after a failure the producer is recreated with `initialSequenceId` = first unacknowledged − 1.
 */
export async function createPulsarClientSink(options: PulsarClientSinkOptions): Promise<EventSink> {
  const pulsar = await loadPulsarClient();
  const client = new pulsar.Client({
    serviceUrl: options.serviceUrl,
    authentication: options.token ? new pulsar.AuthenticationToken({ token: options.token }) : undefined,
    tlsTrustCertsFilePath: options.tlsCaFile,
    operationTimeoutSeconds: Math.ceil(options.sendTimeoutMs / 1000),
  });
  let producer: PulsarProducer | undefined;
  let nextSequenceId: number | undefined;
  const drop = async () => {
    const current = producer;
    producer = undefined;
    await current?.close().catch(() => {});
  };
  return {
    name: 'pulsar',
    async publish(events): Promise<PublishResult> {
      if (events.length === 0) return { acknowledged: 0, duplicates: 0 };
      assertConsecutive(events);
      const first = events[0]!.sequenceId;
      if (!producer || nextSequenceId !== first) {
        await drop();
        try {
          producer = await client.createProducer({
            topic: options.topic,
            producerName: options.producerName,
            initialSequenceId: first - 1,
            sendTimeoutMs: options.sendTimeoutMs,
            batchingEnabled: false,
            blockIfQueueFull: true,
          });
        } catch (error) {
          return { acknowledged: 0, duplicates: 0, error: error as Error };
        }
      }
      const current = producer;
      const sends = events.map((event) =>
        current.send({
          data: Buffer.from(event.set),
          partitionKey: event.key,
          properties: messageProperties(event),
          sequenceId: event.sequenceId,
        }),
      );
      for (const send of sends) send.catch(() => {});
      nextSequenceId = first + events.length;
      let acknowledged = 0;
      let duplicates = 0;
      for (const send of sends) {
        try {
          // A deduplicated message's id has ledger -1: "(-1,-1,-1,-1)" from the C++ client.
          if (/^\(?-1[,:]/.test(String(await send))) duplicates += 1;
          acknowledged += 1;
        } catch (error) {
          await drop();
          return { acknowledged, duplicates, error: error as Error };
        }
      }
      return { acknowledged, duplicates };
    },
    async close() {
      await drop();
      await client.close().catch(() => {});
    },
  };
}
