/**
 * Where the demo's IAM events go: the local Pulsar broker (scripts/pulsar/, started here unless
 * PULSAR_WS_URL names a running one), or, where Java or Maven are missing (or DEMO_EVENTS=log),
 * Custos's log sink, and then the orders proxy learns about revocations by introspection.
 */
import path from 'node:path';
import { missingPulsarPrerequisites, startPulsarStandalone, type PulsarStandalone } from '../../scripts/pulsar/pulsar-standalone.js';
import { probeBroker } from '../continuous-auth-proxy.js';

export interface EventFeed {
  kind: 'pulsar' | 'log';
  /** One line saying what feeds the proxy. */
  description: string;
  /** Custos environment variables for this feed. */
  env: Record<string, string>;
  pulsarWsUrl?: string;
  topic?: string;
  stop(): Promise<void>;
}

export const EVENTS_AUDIENCE = 'urn:custos:demo:orders-proxy';

export async function startEventFeed(options: { mode?: string; pulsarWsUrl?: string; dataDir: string; log: (line: string) => void }): Promise<EventFeed> {
  const topic = `persistent://public/default/custos-demo-${Date.now()}`;
  const pulsar = (wsUrl: string, broker?: PulsarStandalone): EventFeed => ({
    kind: 'pulsar',
    description: `IAM events: Pulsar at ${wsUrl}${broker ? ` (local broker, pid ${broker.pid}, started in ${broker.startSeconds.toFixed(1)} s)` : ''}; the orders proxy applies them (custos/verify revocation state)`,
    env: { EVENTS_SINK: 'pulsar-ws', PULSAR_WS_URL: wsUrl, EVENTS_TOPIC: topic, EVENTS_AUDIENCE },
    pulsarWsUrl: wsUrl,
    topic,
    stop: async () => broker?.stop(),
  });
  const logSink = (why: string): EventFeed => ({
    kind: 'log',
    description: `IAM events: log sink (${why}); the orders proxy introspects every token at Custos instead of applying events`,
    env: { EVENTS_SINK: 'log' },
    stop: async () => {},
  });
  if (options.mode && options.mode !== 'log' && options.mode !== 'pulsar') throw new Error(`DEMO_EVENTS=${options.mode}: expected pulsar or log`);
  if (options.mode === 'log') return logSink('DEMO_EVENTS=log');
  if (options.pulsarWsUrl) {
    const problem = await probeBroker(options.pulsarWsUrl);
    if (problem) throw new Error(`no Pulsar broker at PULSAR_WS_URL=${options.pulsarWsUrl} (${problem})`);
    return pulsar(options.pulsarWsUrl);
  }
  const missing = missingPulsarPrerequisites();
  if (missing.length > 0) {
    if (options.mode === 'pulsar') throw new Error(`DEMO_EVENTS=pulsar but the broker cannot run here: missing ${missing.join(', ')}`);
    return logSink(`no local Pulsar broker: missing ${missing.join(', ')}`);
  }
  options.log('starting the local Pulsar broker (about 10 s; the first run fetches its jars with Maven)...');
  const broker = await startPulsarStandalone({ dataDir: path.join(options.dataDir, 'pulsar'), log: options.log });
  return pulsar(broker.wsUrl, broker);
}
