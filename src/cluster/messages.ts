import type { Registry } from 'prom-client';

/** A registry's metrics as `getMetricsAsJSON()` gives them (what the primary aggregates). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What a worker tells the primary over the cluster's IPC channel. */
export type WorkerMessage =
  | { type: 'custos:ready'; issuer: string; port: number; adminPort: number }
  /** A `/metrics` request reached this worker: it asks for every worker's metrics. */
  | { type: 'custos:metrics'; id: number }
  /** The worker's own metrics, as the primary asked (`collect`). */
  | { type: 'custos:collected'; id: number; metrics: MetricsJson };

/** What the primary tells a worker. */
export type PrimaryMessage =
  /** Reload the signing keys (the primary got SIGHUP). */
  | { type: 'custos:reload' }
  /** Send your metrics as JSON. */
  | { type: 'custos:collect'; id: number }
  /** The answer to a worker's `custos:metrics`: the aggregated text, or why there is none. */
  | { type: 'custos:metrics'; id: number; text?: string; error?: string };

/** Whether an IPC message is one of ours (cluster and prom-client send their own on the same channel). */
export function isCustosMessage<T extends { type: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('custos:');
}
