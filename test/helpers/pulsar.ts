import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { inject } from 'vitest';
import WebSocket from 'ws';

/** The run's broker, as test/global-setup.ts started it. */
export interface TestBroker {
  webUrl: string;
  wsUrl: string;
  serviceUrl: string;
}

const provided = inject('pulsar');

/** Why broker tests cannot run here (undefined when they can); `describe.skipIf(...)` takes it. */
export const brokerUnavailable: string | undefined = 'unavailable' in provided ? provided.unavailable : undefined;

/** Waits (up to 4 min: a cold JVM on a busy machine) for the run's broker to be healthy. */
export async function testBroker(): Promise<TestBroker> {
  if ('unavailable' in provided) throw new Error(`no Pulsar broker in this run: ${provided.unavailable}`);
  const deadline = Date.now() + 240_000;
  for (;;) {
    const status = JSON.parse(await readFile(provided.statusFile, 'utf8')) as { state: string; error?: string } & TestBroker;
    if (status.state === 'ready') return status;
    if (status.state === 'failed') throw new Error(`Pulsar standalone failed to start: ${status.error}`);
    if (Date.now() > deadline) throw new Error('Pulsar standalone still starting after 240 s');
    await delay(250);
  }
}

/** A fresh topic name per test, so tests sharing the broker never see each other's messages. */
export function uniqueTopic(label: string): string {
  return `persistent://public/default/custos-test-${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

/** One message as a WebSocket consumer/reader receives it. */
export interface ReadMessage {
  payload: string;
  key?: string;
  properties: Record<string, string>;
  messageId: string;
}

function topicPath(topic: string): string {
  return topic.replace(/^persistent:\/\//, 'persistent/');
}

/**
 * Reads a topic from the beginning with Pulsar's WebSocket reader API and returns what the broker
 * stored: stops after `expect` messages, or when nothing arrived for `idleMs` after that.
 */
export async function readTopic(broker: TestBroker, topic: string, options: { expect: number; idleMs?: number; timeoutMs?: number }): Promise<ReadMessage[]> {
  const socket = new WebSocket(`${broker.wsUrl}/ws/v2/reader/${topicPath(topic)}?messageId=earliest&receiverQueueSize=1000`);
  const messages: ReadMessage[] = [];
  const idleMs = options.idleMs ?? 1500;
  await new Promise<void>((resolve, reject) => {
    let idle: NodeJS.Timeout | undefined;
    const overall = setTimeout(finish, options.timeoutMs ?? 30_000);
    function finish() {
      clearTimeout(overall);
      if (idle) clearTimeout(idle);
      socket.close();
      resolve();
    }
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      if (messages.length >= options.expect) idle = setTimeout(finish, idleMs);
    };
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { payload: string; key?: string; properties?: Record<string, string>; messageId: string };
      messages.push({
        payload: Buffer.from(message.payload, 'base64').toString('utf8'),
        key: message.key,
        properties: message.properties ?? {},
        messageId: message.messageId,
      });
      socket.send(JSON.stringify({ messageId: message.messageId }));
      armIdle();
    });
    socket.once('open', armIdle);
    socket.once('error', (error) => {
      clearTimeout(overall);
      reject(error);
    });
  });
  return messages;
}
