import { Counter, type Registry } from 'prom-client';

/** The SSF receiver's Prometheus counters (registered only when a transmitter is configured). */
export interface ReceiverMetrics {
  /** Every push request to the receiver endpoint. */
  received: Counter;
  /** Verified SETs by transmitter and outcome (`applied`, `recorded`, `unknown_subject`, `ignored`). */
  accepted: Counter<'transmitter' | 'outcome'>;
  /** Refused SETs by RFC 8935 error code, `replayed`, `unsupported_media_type`, `body_too_large` or `keys_unavailable`. */
  refused: Counter<'transmitter' | 'reason'>;
  /** Poll requests (RFC 8936) that failed: transmitter unreachable, an error status, a malformed answer. */
  pollFailures: Counter<'transmitter'>;
}

export function createReceiverMetrics(registry: Registry): ReceiverMetrics {
  return {
    received: new Counter({ name: 'custos_ssf_receiver_requests_total', help: 'Push requests to the SSF receiver endpoint', registers: [registry] }),
    accepted: new Counter({
      name: 'custos_ssf_receiver_sets_total',
      help: 'Verified SETs by transmitter and outcome (applied, recorded, unknown_subject, ignored)',
      labelNames: ['transmitter', 'outcome'] as const,
      registers: [registry],
    }),
    refused: new Counter({
      name: 'custos_ssf_receiver_refused_total',
      help: 'Refused SETs by transmitter (unknown when the issuer is not trusted) and reason (RFC 8935 error code, replayed, ...)',
      labelNames: ['transmitter', 'reason'] as const,
      registers: [registry],
    }),
    pollFailures: new Counter({
      name: 'custos_ssf_receiver_poll_failures_total',
      help: 'Failed poll requests to a transmitter (RFC 8936), retried with backoff',
      labelNames: ['transmitter'] as const,
      registers: [registry],
    }),
  };
}
