/**
 * An Apache Pulsar standalone broker (4.0 LTS) assembled from Maven Central jars, for the tests
 * and for trying Custos locally (`npm run pulsar:standalone`).
 *
 * - jars: `mvn dependency:copy-dependencies` of scripts/pulsar/pom.xml into `.cache/pulsar/<version>/lib`
 *   (once; Maven keeps its own download cache in ~/.m2);
 * - run: `org.apache.pulsar.PulsarStandaloneStarter` with the RocksDB metadata store, one bookie,
 *   no functions worker, no stream storage, WebSocket service on, broker deduplication on,
 *   a default retention of acknowledged messages (7 days or 1 GiB per topic, so a restarted
 *   consumer can rebuild its revocation state), everything bound to 127.0.0.1;
 * - ready: `GET /admin/v2/brokers/health` answers 200.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
export const PULSAR_VERSION = '4.0.7';
export const DEFAULT_CACHE_DIR = path.join(ROOT, '.cache', 'pulsar', PULSAR_VERSION);

/**
 * The command prefix that makes Java receive SIGTERM when this process dies, even of SIGKILL
 * (Linux's PR_SET_PDEATHSIG through util-linux `setpriv`, which then execs Java in place); empty
 * where there is no setpriv, and `stop()` or the signal handlers stop Java there.
 */
const DIES_WITH_PARENT: string[] =
  process.platform === 'linux' && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0 ? ['setpriv', '--pdeathsig', 'TERM', '--', 'java'] : [];

/** What this machine lacks to run the broker (`[]` when Java 17+ and Maven are present). */
export function missingPulsarPrerequisites(): string[] {
  const missing: string[] = [];
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const version = /version "(\d+)/.exec(`${java.stderr ?? ''}${java.stdout ?? ''}`)?.[1];
  if (java.error || java.status !== 0) missing.push('java (JDK/JRE 17 or newer on PATH)');
  else if (!version || Number(version) < 17) missing.push(`java 17 or newer (found ${version ?? 'unknown'})`);
  if (!existsSync(path.join(DEFAULT_CACHE_DIR, 'lib', '.complete'))) {
    const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
    if (mvn.error || mvn.status !== 0) missing.push('mvn (Apache Maven on PATH, to fetch the Pulsar jars)');
  }
  return missing;
}

/** Resolves the broker's jars into `<cacheDir>/lib` unless already there; returns that directory. */
export async function ensurePulsarJars(cacheDir = DEFAULT_CACHE_DIR, log: (line: string) => void = () => {}): Promise<string> {
  const lib = path.join(cacheDir, 'lib');
  if (existsSync(path.join(lib, '.complete'))) return lib;
  const staging = `${lib}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(cacheDir, { recursive: true });
  log(`resolving Apache Pulsar ${PULSAR_VERSION} jars from Maven Central into ${lib} (first run only)`);
  const started = Date.now();
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const mvn = spawn(
      'mvn',
      [
        '-B',
        '-q',
        '-s',
        path.join(HERE, 'settings.xml'),
        '-f',
        path.join(HERE, 'pom.xml'),
        'dependency:copy-dependencies',
        `-DoutputDirectory=${staging}`,
        '-DincludeScope=runtime',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    mvn.stdout.on('data', (chunk) => output.push(String(chunk)));
    mvn.stderr.on('data', (chunk) => output.push(String(chunk)));
    mvn.once('error', reject);
    mvn.once('exit', resolve);
  });
  if (code !== 0) {
    await rm(staging, { recursive: true, force: true });
    const tail = output.join('').split('\n').filter((line) => line.includes('ERROR')).slice(0, 3).join(' | ');
    throw new Error(`mvn could not resolve the Pulsar jars (exit ${code}): ${tail || 'see mvn output'}`);
  }
  await writeFile(path.join(staging, '.complete'), `${PULSAR_VERSION} ${new Date().toISOString()}\n`);
  await rm(lib, { recursive: true, force: true });
  await rename(staging, lib);
  log(`Pulsar jars resolved in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return lib;
}

export interface PulsarStandaloneOptions {
  /** Broker data (metadata, bookie ledgers, config, log). Kept across restarts unless `wipe`. */
  dataDir: string;
  /** Binary protocol port (default: a free port). */
  brokerPort?: number;
  /** HTTP admin + WebSocket port (default: a free port). */
  webPort?: number;
  cacheDir?: string;
  /** JVM heap ceiling in MiB (default 512). */
  maxHeapMb?: number;
  /** How long to wait for the health endpoint (default 240 s: a cold JVM on a busy 2-core box). */
  readyTimeoutMs?: number;
  wipe?: boolean;
  log?: (line: string) => void;
  /** How long topics keep messages after they were acknowledged (default 10080 min: 7 days). */
  retentionMinutes?: number;
  /** Size cap of that retention per topic, in MB (default 1024). */
  retentionSizeMb?: number;
}

/** Default retention: at least as long as resume tokens live (7 days), as the README asks of consumers' brokers. */
export const DEFAULT_RETENTION_MINUTES = 7 * 24 * 60;
export const DEFAULT_RETENTION_SIZE_MB = 1024;

/** A running broker. */
export interface PulsarStandalone {
  /** `pulsar://127.0.0.1:<port>` (binary protocol). */
  serviceUrl: string;
  /** `http://127.0.0.1:<port>` (admin REST API). */
  webUrl: string;
  /** `ws://127.0.0.1:<port>` (WebSocket producer/consumer API under /ws/v2/...). */
  wsUrl: string;
  pid: number;
  logFile: string;
  /** Seconds from spawn to a healthy broker. */
  startSeconds: number;
  /** SIGTERM, then SIGKILL after 20 s. Data stays in `dataDir`. */
  stop(): Promise<void>;
}

/** The broker's (and its bookie's) configuration file. */
export function standaloneConf(
  brokerPort: number,
  webPort: number,
  retention: { minutes: number; sizeMb: number } = { minutes: DEFAULT_RETENTION_MINUTES, sizeMb: DEFAULT_RETENTION_SIZE_MB },
): string {
  return [
    '# Written by scripts/pulsar/pulsar-standalone.ts: a loopback-only single-node broker for tests.',
    'clusterName=standalone',
    'bindAddress=127.0.0.1',
    'advertisedAddress=127.0.0.1',
    `brokerServicePort=${brokerPort}`,
    `webServicePort=${webPort}`,
    'webSocketServiceEnabled=true',
    // Producer name + sequence id deduplication: a relay that resends after a crash is dropped.
    'brokerDeduplicationEnabled=true',
    // Retention of acknowledged messages for every namespace without its own policy: a consumer
    // restarted with a reader from the start rebuilds its revocation state (README, IAM events).
    `defaultRetentionTimeInMinutes=${retention.minutes}`,
    `defaultRetentionSizeInMB=${retention.sizeMb}`,
    'functionsWorkerEnabled=false',
    'allowAutoTopicCreation=true',
    'allowAutoTopicCreationType=non-partitioned',
    'transactionCoordinatorEnabled=false',
    'managedLedgerDefaultEnsembleSize=1',
    'managedLedgerDefaultWriteQuorum=1',
    'managedLedgerDefaultAckQuorum=1',
    // Bookie (the same file configures the local bookie): small caches, no HTTP server.
    'journalSyncData=false',
    'dbStorage_writeCacheMaxSizeMb=16',
    'dbStorage_readAheadCacheMaxSizeMb=16',
    'dbStorage_rocksDB_blockCacheSize=16777216',
    'httpServerEnabled=false',
    '',
  ].join('\n');
}

const JVM_OPENS = [
  'java.base/java.io',
  'java.base/java.util.zip',
  'java.base/sun.net',
  'java.base/jdk.internal.platform',
  'java.management/sun.management',
  'jdk.management/com.sun.management.internal',
];

async function healthy(webUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${webUrl}/admin/v2/brokers/health`, { signal: AbortSignal.timeout(30_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Starts the broker and resolves once its health endpoint answers 200. */
export async function startPulsarStandalone(options: PulsarStandaloneOptions): Promise<PulsarStandalone> {
  const log = options.log ?? (() => {});
  const lib = await ensurePulsarJars(options.cacheDir, log);
  const dataDir = path.resolve(options.dataDir);
  if (options.wipe) await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const brokerPort = options.brokerPort ?? (await freePort());
  const webPort = options.webPort ?? (await freePort());
  const confFile = path.join(dataDir, 'standalone.conf');
  await writeFile(
    confFile,
    standaloneConf(brokerPort, webPort, { minutes: options.retentionMinutes ?? DEFAULT_RETENTION_MINUTES, sizeMb: options.retentionSizeMb ?? DEFAULT_RETENTION_SIZE_MB }),
  );
  const logFile = path.join(dataDir, 'broker.log');
  const stderr = createWriteStream(path.join(dataDir, 'broker.stderr.log'), { flags: 'a' });
  const started = Date.now();
  // Java stops when this process dies, however it dies (Linux: setpriv --pdeathsig).
  const child: ChildProcess = spawn(
    DIES_WITH_PARENT[0] ?? 'java',
    [
      ...DIES_WITH_PARENT.slice(1),
      `-Xmx${options.maxHeapMb ?? 512}m`,
      '-Xms64m',
      '-XX:MaxDirectMemorySize=256m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      ...JVM_OPENS.flatMap((module) => ['--add-opens', `${module}=ALL-UNNAMED`]),
      `-Dlog4j.configurationFile=${path.join(HERE, 'log4j2.xml')}`,
      `-Dcustos.pulsar.logFile=${logFile}`,
      '-Dpulsar.allocator.exit_on_oom=true',
      '-cp',
      `${lib}/*`,
      'org.apache.pulsar.PulsarStandaloneStarter',
      '--config',
      confFile,
      '--no-functions-worker',
      '--no-stream-storage',
      '--metadata-dir',
      path.join(dataDir, 'metadata'),
      '--bookkeeper-dir',
      path.join(dataDir, 'bookkeeper'),
    ],
    { cwd: dataDir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.pipe(stderr);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  const webUrl = `http://127.0.0.1:${webPort}`;
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exit;
    clearTimeout(timer);
  };
  const deadline = started + (options.readyTimeoutMs ?? 240_000);
  for (;;) {
    if (exited) {
      const tail = await readFile(logFile, 'utf8').then(
        (text) => text.split('\n').filter((line) => /ERROR|Exception/.test(line)).slice(-3).join(' | '),
        () => '',
      );
      throw new Error(`Pulsar standalone exited (${exited.code ?? exited.signal}) before it was healthy: ${tail || `see ${logFile}`}`);
    }
    if (await healthy(webUrl)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Pulsar standalone not healthy after ${(options.readyTimeoutMs ?? 240_000) / 1000} s (log: ${logFile})`);
    }
    await delay(500);
  }
  const startSeconds = (Date.now() - started) / 1000;
  log(`Pulsar ${PULSAR_VERSION} standalone healthy in ${startSeconds.toFixed(1)} s: ${webUrl} pulsar://127.0.0.1:${brokerPort}`);
  return {
    serviceUrl: `pulsar://127.0.0.1:${brokerPort}`,
    webUrl,
    wsUrl: `ws://127.0.0.1:${webPort}`,
    pid: child.pid!,
    logFile,
    startSeconds,
    stop,
  };
}

async function main(): Promise<void> {
  const missing = missingPulsarPrerequisites();
  if (missing.length > 0) {
    console.error(`cannot run Pulsar standalone: missing ${missing.join(', ')}`);
    process.exit(1);
  }
  const env = process.env;
  for (const name of ['PULSAR_RETENTION_MINUTES', 'PULSAR_RETENTION_SIZE_MB']) {
    const value = env[name];
    // -1 is Pulsar's "infinite".
    if (value !== undefined && !/^(-1|\d+)$/.test(value)) throw new Error(`${name} must be a whole number of ${name.endsWith('MB') ? 'MB' : 'minutes'} (or -1 for no limit), not "${value}"`);
  }
  const broker = await startPulsarStandalone({
    dataDir: env.PULSAR_DATA_DIR ?? path.join(ROOT, '.data', 'pulsar'),
    brokerPort: Number(env.PULSAR_BROKER_PORT ?? 6650),
    webPort: Number(env.PULSAR_WEB_PORT ?? 8080),
    retentionMinutes: Number(env.PULSAR_RETENTION_MINUTES ?? DEFAULT_RETENTION_MINUTES),
    retentionSizeMb: Number(env.PULSAR_RETENTION_SIZE_MB ?? DEFAULT_RETENTION_SIZE_MB),
    log: (line) => console.log(line),
  });
  console.log(`PULSAR_SERVICE_URL=${broker.serviceUrl}`);
  console.log(`PULSAR_WS_URL=${broker.wsUrl}`);
  console.log(`retention: ${env.PULSAR_RETENTION_MINUTES ?? DEFAULT_RETENTION_MINUTES} min or ${env.PULSAR_RETENTION_SIZE_MB ?? DEFAULT_RETENTION_SIZE_MB} MB per topic (PULSAR_RETENTION_MINUTES, PULSAR_RETENTION_SIZE_MB)`);
  console.log(`admin API: ${broker.webUrl}/admin/v2   broker log: ${broker.logFile}   (Ctrl-C stops it)`);
  const shutdown = () => {
    broker.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: Error) => {
    console.error(`pulsar:standalone: ${error.message}`);
    process.exit(1);
  });
}
