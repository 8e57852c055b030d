import type { Logger } from 'pino';
import { z } from 'zod';
import type { TransmitterConfig } from '../../config/ssf-receiver.js';
import { httpsRequest } from './https-client.js';
import type { ReceiverMetrics } from './receiver-metrics.js';
import type { ReceiverService } from './receiver.service.js';
import { KeysUnavailable, SetRefused, type SetVerifier } from './set-verifier.js';

/** Longest pause after failed polls (capped exponential backoff with jitter). */
const MAX_BACKOFF_MS = 5 * 60 * 1000;
const POLL_TIMEOUT_MS = 60_000;

/** RFC 8936 §2.5 poll response: SETs by `jti`, and whether more are waiting. */
const pollResponse = z.looseObject({ sets: z.record(z.string(), z.string()), moreAvailable: z.boolean().optional() });

export interface PollerDeps {
  transmitter: TransmitterConfig;
  poll: NonNullable<TransmitterConfig['poll']>;
  /** The `Authorization` header value sent to the poll endpoint. */
  authorization: string;
  ca: string | undefined;
  verify: SetVerifier;
  service: ReceiverService;
  metrics: ReceiverMetrics;
  logger: Logger;
  bodyLimitBytes: number;
}

/**
 * Receives a transmitter's SETs by poll (RFC 8936): POSTs `{maxEvents, returnImmediately: true,
 * ack, setErrs}` to its poll endpoint over verified TLS, verifies and applies each SET exactly as a
 * pushed one, acknowledges what it applied (a replay is acknowledged too: it was applied before),
 * reports refused SETs in `setErrs` with their RFC 8935 error code, and leaves unacknowledged what it
 * could not verify yet (keys unreachable) or not store (database down), so the transmitter delivers
 * it again. Polls again at once while it has acknowledgements to send or `moreAvailable`; otherwise
 * waits `interval_seconds`; after failures, a capped exponential backoff with jitter.
 * Several Custos instances may poll the same stream: the `jti` record keeps each SET applied once.
 */
export function startPoller(deps: PollerDeps): { stop(): Promise<void> } {
  const log = deps.logger.child({ component: 'ssf-receiver', transmitter: deps.transmitter.id });
  const stopping = new AbortController();
  let ack: string[] = [];
  let setErrs: Record<string, { err: string; description: string }> = {};
  let failures = 0;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stopping.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });

  async function pollOnce(): Promise<boolean> {
    const { status, body } = await httpsRequest(deps.poll.endpoint_url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: deps.authorization },
      body: JSON.stringify({ maxEvents: deps.poll.max_events, returnImmediately: true, ...(ack.length > 0 ? { ack } : {}), ...(Object.keys(setErrs).length > 0 ? { setErrs } : {}) }),
      ca: deps.ca,
      signal: stopping.signal,
      maxBytes: deps.poll.max_events * deps.bodyLimitBytes,
      timeoutMs: POLL_TIMEOUT_MS,
    });
    if (status !== 200) throw new Error(`poll endpoint answered ${status}`);
    const parsed = pollResponse.safeParse(JSON.parse(body.toString('utf8')));
    if (!parsed.success) throw new Error('poll response is not {sets, moreAvailable}');
    // The transmitter received the acknowledgements and errors it answered after.
    ack = [];
    setErrs = {};
    const sent = Object.keys(parsed.data.sets).length;
    for (const [jti, token] of Object.entries(parsed.data.sets)) await handle(jti, token);
    return parsed.data.moreAvailable === true || sent > 0;
  }

  async function handle(jti: string, token: string): Promise<void> {
    const transmitter = deps.transmitter.id;
    try {
      const set = await deps.verify(token, { polled: true });
      if (set.transmitter.id !== transmitter) throw new SetRefused('invalid_issuer', 'the SET issuer is not this poll endpoint’s transmitter', set.transmitter.id);
      if (set.jti !== jti) throw new SetRefused('invalid_request', 'the SET jti differs from its key in sets', transmitter);
      const { outcome, action } = await deps.service.receive(set, {});
      ack.push(jti);
      if (outcome === 'replayed') {
        deps.metrics.refused.inc({ transmitter, reason: 'replayed' });
        return;
      }
      deps.metrics.accepted.inc({ transmitter, outcome });
      log.info({ jti, event: set.eventType, outcome, action, delivery: 'poll' }, 'SET received');
    } catch (error) {
      if (error instanceof SetRefused) {
        deps.metrics.refused.inc({ transmitter, reason: error.err });
        log.warn({ reason: error.err, description: error.description, delivery: 'poll' }, 'SET refused');
        if (jti.length <= 256) setErrs[jti] = { err: error.err, description: error.description };
        return;
      }
      // Keys unreachable, database down: not acknowledged, so delivered again.
      if (error instanceof KeysUnavailable) deps.metrics.refused.inc({ transmitter, reason: 'keys_unavailable' });
      log.error({ err: error, delivery: 'poll' }, 'SET not handled; left for redelivery');
    }
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const more = await pollOnce();
        failures = 0;
        if (!more && ack.length === 0 && Object.keys(setErrs).length === 0) await pause(deps.poll.interval_seconds * 1000);
      } catch (error) {
        if (stopping.signal.aborted) break;
        failures += 1;
        deps.metrics.pollFailures.inc({ transmitter: deps.transmitter.id });
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 16));
        log.warn({ err: error, failures }, 'poll failed; retrying');
        await pause(Math.round(backoff / 2 + (Math.random() * backoff) / 2));
      }
    }
  })();

  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
