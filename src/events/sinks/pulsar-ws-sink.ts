import WebSocket from 'ws';
import { assertConsecutive, messageProperties, type EventSink, type OutboundEvent, type PublishResult } from './event-sink.js';

/** Options of {@link createPulsarWsSink}. */
export interface PulsarWsSinkOptions {
  /** `ws://host:port` or `wss://host:port` of a broker or WebSocket proxy (PULSAR_WS_URL). */
  url: string;
  /** `persistent://tenant/namespace/topic` (EVENTS_TOPIC). */
  topic: string;
  /** Fixed producer name: with the sequence ids, the broker's deduplication key. */
  producerName: string;
  /** Pulsar token authentication (sent as `Authorization: Bearer`; never logged). */
  token?: string;
  /** PEM CA bundle for `wss://` (PULSAR_TLS_CA_FILE contents). */
  ca?: string;
  /** How long the broker-side producer may try a send before reporting an error. */
  sendTimeoutMs: number;
  connectTimeoutMs?: number;
}

interface Pending {
  resolve(duplicate: boolean): void;
  reject(error: Error): void;
}

interface Connection {
  socket: WebSocket;
  /** The sequence id the broker-side producer assigns to the next message on this socket. */
  nextSequenceId: number;
  pending: Map<string, Pending>;
  closed?: Error;
}

/**
 * The producer path of Pulsar's WebSocket API: `/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}`.
 */
export function producerPath(topic: string): string {
  const match = /^persistent:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(topic);
  if (!match) throw new Error(`topic must be persistent://tenant/namespace/topic, got ${topic}`);
  return `/ws/v2/producer/persistent/${match.slice(1).map(encodeURIComponent).join('/')}`;
}

/**
 * A broker receipt for a message deduplication dropped carries message id -1:-1; its
 * base64 protobuf (`MessageIdData`) starts with field 1 (ledgerId) = varint of -1 (ten bytes).
 */
function isDuplicateReceipt(messageId: unknown): boolean {
  if (typeof messageId !== 'string') return false;
  const bytes = Buffer.from(messageId, 'base64');
  return bytes.length > 10 && bytes[0] === 0x08 && bytes.subarray(1, 10).every((byte) => byte === 0xff);
}

/** The broker's reason from a refused upgrade (Jetty error page), without markup, at most 200 chars. */
function refusalReason(status: number | undefined, body: string): string {
  const detail = /errorMsg&quot;:&quot;(.*?)&quot;/.exec(body)?.[1] ?? /<title>(.*?)<\/title>/s.exec(body)?.[1] ?? '';
  return `HTTP ${status ?? '?'}${detail ? `: ${detail.replace(/&[a-z]+;/g, "'").slice(0, 200)}` : ''}`;
}

/**
 * `EVENTS_SINK=pulsar-ws`: publishes over Pulsar's WebSocket producer API with the `ws` package.
 *
 * Deduplication: the broker-side producer (Pulsar 4.0's WebSocket service) numbers the messages
 * of one socket itself, consecutively from the `initialSequenceId` query parameter + 1 (it ignores
 * a per-message `sequenceId`). So this sink opens the socket with `initialSequenceId` = first
 * sequence id − 1 and sends strictly consecutive sequence ids on it; whenever the relay resends
 * (after an error, a crash or a restart) it reconnects, and the broker, which remembers the
 * highest sequence id it stored for this producer name, acknowledges the repeats as duplicates
 * without storing them again. A second producer with the same name is refused by the broker (409).
 */
export function createPulsarWsSink(options: PulsarWsSinkOptions): EventSink {
  const base = new URL(producerPath(options.topic), options.url);
  // Only the host reaches messages and logs (never a path, query or userinfo).
  const brokerHost = base.host;
  let connection: Connection | undefined;

  const connect = (initialSequenceId: number): Promise<Connection> => {
    const url = new URL(base);
    url.searchParams.set('producerName', options.producerName);
    url.searchParams.set('initialSequenceId', String(initialSequenceId));
    url.searchParams.set('sendTimeoutMillis', String(options.sendTimeoutMs));
    url.searchParams.set('batchingEnabled', 'false');
    const socket = new WebSocket(url, {
      headers: options.token ? { Authorization: `Bearer ${options.token}` } : undefined,
      ca: options.ca,
      handshakeTimeout: options.connectTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    });
    const conn: Connection = { socket, nextSequenceId: initialSequenceId + 1, pending: new Map() };
    const fail = (error: Error) => {
      conn.closed ??= error;
      for (const waiter of conn.pending.values()) waiter.reject(conn.closed);
      conn.pending.clear();
    };
    socket.on('message', (data) => {
      let ack: { result?: string; errorMsg?: string; context?: string; messageId?: string };
      try {
        ack = JSON.parse(String(data)) as typeof ack;
      } catch {
        return;
      }
      const waiter = ack.context === undefined ? undefined : conn.pending.get(ack.context);
      if (!waiter) return;
      conn.pending.delete(ack.context!);
      if (ack.result === 'ok') waiter.resolve(isDuplicateReceipt(ack.messageId));
      else waiter.reject(new Error(`broker refused the message: ${ack.result ?? 'no result'}${ack.errorMsg ? ` (${ack.errorMsg.slice(0, 200)})` : ''}`));
    });
    socket.on('close', (code) => fail(new Error(`WebSocket closed (${code})`)));
    socket.on('error', (error) => fail(error));
    return new Promise<Connection>((resolve, reject) => {
      socket.once('open', () => resolve(conn));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (body.length < 8192) body += chunk;
        });
        response.on('end', () => {
          const error = new Error(`Pulsar refused the producer: ${refusalReason(response.statusCode, body)}`);
          fail(error);
          reject(error);
        });
        response.on('error', () => reject(new Error(`Pulsar refused the producer: HTTP ${response.statusCode}`)));
      });
      socket.once('error', (error) => reject(new Error(`cannot reach Pulsar at ${brokerHost}: ${error.message}`)));
      socket.once('close', (code) => reject(new Error(`WebSocket closed during connect (${code})`)));
    });
  };

  const drop = () => {
    const current = connection;
    connection = undefined;
    if (current && current.socket.readyState !== WebSocket.CLOSED) current.socket.terminate();
  };

  return {
    name: 'pulsar-ws',
    async publish(events: readonly OutboundEvent[]): Promise<PublishResult> {
      if (events.length === 0) return { acknowledged: 0, duplicates: 0 };
      assertConsecutive(events);
      const first = events[0]!.sequenceId;
      if (!connection || connection.closed || connection.nextSequenceId !== first) {
        drop();
        try {
          connection = await connect(first - 1);
        } catch (error) {
          return { acknowledged: 0, duplicates: 0, error: error as Error };
        }
      }
      const conn = connection;
      const acks = events.map(
        (event) =>
          new Promise<boolean>((resolve, reject) => {
            const context = String(event.sequenceId);
            conn.pending.set(context, { resolve, reject });
            conn.socket.send(
              JSON.stringify({
                payload: Buffer.from(event.set).toString('base64'),
                key: event.key,
                properties: messageProperties(event),
                context,
                sequenceId: event.sequenceId,
              }),
              (error) => {
                if (error) reject(error);
              },
            );
          }),
      );
      // Awaited in order below; a rejection that lands before its turn must not count as unhandled.
      for (const ack of acks) ack.catch(() => {});
      conn.nextSequenceId = first + events.length;
      // The broker answers every send within sendTimeoutMs; past that (plus slack) the socket is stale.
      const timer = setTimeout(() => {
        conn.closed ??= new Error(`no broker receipt within ${options.sendTimeoutMs + 5000} ms`);
        for (const waiter of conn.pending.values()) waiter.reject(conn.closed);
        conn.pending.clear();
      }, options.sendTimeoutMs + 5000);
      let acknowledged = 0;
      let duplicates = 0;
      let failure: Error | undefined;
      for (const ack of acks) {
        try {
          const duplicate = await ack;
          if (!failure) {
            acknowledged += 1;
            if (duplicate) duplicates += 1;
          }
        } catch (error) {
          failure ??= error as Error;
        }
      }
      clearTimeout(timer);
      // After any failure the producer's numbering is unknown: the next call reconnects.
      if (failure) drop();
      return { acknowledged, duplicates, error: failure };
    },
    async close() {
      const current = connection;
      connection = undefined;
      if (!current || current.socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          current.socket.terminate();
          resolve();
        }, 2000);
        current.socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        current.socket.close(1000);
      });
    },
  };
}
