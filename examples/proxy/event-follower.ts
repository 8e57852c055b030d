/**
 * Follows Custos's IAM event topic with Pulsar's WebSocket reader API and applies each verified
 * SET (RFC 8417) to a `custos/verify` revocation state.
 *
 * Reads from the start of the topic's retention, so a restarted proxy rebuilds its state (set the
 * namespace retention to at least the access token lifetime), and resumes after the last message
 * on reconnect.
 */
import WebSocket from 'ws';
import { createSecurityEventVerifier, type RevocationState, type VerifyError } from '../../src/verify/index.js';

export interface EventFollowerOptions {
  issuer: string;
  /** This consumer's identifier in the SETs' `aud` (Custos EVENTS_AUDIENCE). */
  eventsAudience: string;
  jwksUri: string;
  fetch?: typeof fetch;
  /** e.g. `ws://127.0.0.1:8080`. */
  pulsarWsUrl: string;
  topic: string;
  log?: (line: string) => void;
}

/** Whether the stream is up, and since when it is down. */
export interface EventStreamHealth {
  connectedSince?: number;
  downSince: number;
}

export interface EventFollower {
  health: EventStreamHealth;
  /** Resolves once the reader is connected (rejects after `timeoutMs`). */
  connected(timeoutMs?: number): Promise<void>;
  stop(): void;
}

export function followEvents(options: EventFollowerOptions, state: RevocationState): EventFollower {
  const verifier = createSecurityEventVerifier({ issuer: options.issuer, audience: options.eventsAudience, jwksUri: options.jwksUri, fetch: options.fetch });
  const log = options.log ?? (() => {});
  const topicPath = options.topic.replace(/^persistent:\/\//, 'persistent/');
  const health: EventStreamHealth = { downSince: Date.now() };
  const waiters = new Set<() => void>();
  let lastMessageId = 'earliest';
  let socket: WebSocket | undefined;
  let stopped = false;
  const connect = () => {
    socket = new WebSocket(`${options.pulsarWsUrl}/ws/v2/reader/${topicPath}?messageId=${encodeURIComponent(lastMessageId)}`);
    socket.on('open', () => {
      health.connectedSince = Date.now();
      for (const wake of waiters) wake();
      waiters.clear();
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { payload: string; messageId: string };
      socket?.send(JSON.stringify({ messageId: message.messageId }));
      lastMessageId = message.messageId;
      verifier.verify(Buffer.from(message.payload, 'base64').toString('utf8')).then(
        (event) => log(`event ${event.kind} for ${event.subject}: ${state.apply(event)}`),
        (error: Error) => log(`ignored an event that does not verify: ${(error as VerifyError).code ?? error.message}`),
      );
    });
    socket.on('close', () => {
      if (health.connectedSince !== undefined) health.downSince = Date.now();
      health.connectedSince = undefined;
      if (!stopped) setTimeout(connect, 500).unref();
    });
    // Reconnects on close; the reason is not worth a line per retry.
    socket.on('error', () => {});
  };
  connect();
  return {
    health,
    connected(timeoutMs = 10_000) {
      if (health.connectedSince !== undefined) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`no connection to the Pulsar WebSocket service at ${options.pulsarWsUrl} within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(done);
      });
    },
    stop() {
      stopped = true;
      socket?.close();
    },
  };
}
