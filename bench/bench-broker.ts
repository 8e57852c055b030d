/** What the event benches share: their Pulsar broker and percentiles. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { missingPulsarPrerequisites, startPulsarStandalone } from '../scripts/pulsar/pulsar-standalone.js';

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A broker for a bench: PULSAR_WS_URL's, or a local standalone started (and stopped) by the bench. */
export interface BenchBroker {
  wsUrl: string;
  /** How the broker was found, for the results. */
  description: string;
  stop(): Promise<void>;
}

/** PULSAR_WS_URL's broker, else a Pulsar standalone of its own; exits with one line when neither can be had. */
export async function benchBroker(bench: string): Promise<BenchBroker> {
  const given = process.env.PULSAR_WS_URL;
  if (given) return { wsUrl: given, description: given, stop: async () => {} };
  const missing = missingPulsarPrerequisites();
  if (missing.length > 0) {
    console.error(`${bench} needs PULSAR_WS_URL or ${missing.join(', ')}`);
    process.exit(1);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'custos-bench-pulsar-'));
  const broker = await startPulsarStandalone({ dataDir, log: (line) => console.log(line) });
  return {
    wsUrl: broker.wsUrl,
    description: `Pulsar standalone started by the bench (${broker.startSeconds.toFixed(1)} s to healthy)`,
    async stop() {
      await broker.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
