import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded-postgres.js';
import { missingPulsarPrerequisites, startPulsarStandalone, type PulsarStandalone } from '../scripts/pulsar/pulsar-standalone.js';
import { freePort } from '../scripts/free-port.js';
import { browserUnavailable, CHROMIUM } from './helpers/chromium.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of a PostgreSQL database the tests may create databases from. */
    adminDatabaseUrl: string;
    /** The run's Pulsar broker (test/helpers/pulsar.ts waits for it), or why there is none. */
    pulsar: { statusFile: string } | { unavailable: string };
  }
}

let embedded: EmbeddedDatabase | undefined;
let dataDir: string | undefined;
let pulsarDir: string | undefined;
let pulsar: Promise<PulsarStandalone | undefined> | undefined;

/** No broker when this config's files or the command line's filters select no broker test. */
function brokerTestsSelected(project: TestProject): boolean {
  if (!project.config.include.some((glob) => glob.startsWith('test/**') || glob.includes('events'))) return false;
  const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('-') && !['run', 'watch', 'bench'].includes(arg));
  return filters.length === 0 || filters.some((filter) => /event|pulsar|relay|broker|verify/i.test(filter));
}

/**
 * One Pulsar standalone per run, started in the background (its tests wait for it; the other
 * tests do not). Without Java or Maven the broker tests skip with a notice, unless
 * CUSTOS_REQUIRE_PULSAR=1 (CI), which makes that a failure.
 */
async function startPulsar(project: TestProject): Promise<void> {
  if (!brokerTestsSelected(project)) {
    project.provide('pulsar', { unavailable: 'no broker test selected' });
    return;
  }
  const missing = missingPulsarPrerequisites();
  if (missing.length > 0) {
    const reason = `missing ${missing.join(', ')}`;
    if (process.env.CUSTOS_REQUIRE_PULSAR === '1') throw new Error(`CUSTOS_REQUIRE_PULSAR=1 but the Pulsar broker cannot run: ${reason}`);
    console.warn(`\n*** PULSAR BROKER TESTS SKIPPED: ${reason} ***\n`);
    project.provide('pulsar', { unavailable: reason });
    return;
  }
  pulsarDir = await mkdtemp(path.join(tmpdir(), 'custos-test-pulsar-'));
  const statusFile = path.join(pulsarDir, 'status.json');
  await writeStatus(statusFile, { state: 'starting' });
  project.provide('pulsar', { statusFile });
  pulsar = startPulsarStandalone({ dataDir: path.join(pulsarDir, 'broker') }).then(
    async (broker) => {
      await writeStatus(statusFile, { state: 'ready', webUrl: broker.webUrl, wsUrl: broker.wsUrl, serviceUrl: broker.serviceUrl, startSeconds: broker.startSeconds });
      return broker;
    },
    async (error: Error) => {
      await writeStatus(statusFile, { state: 'failed', error: error.message });
      return undefined;
    },
  );
}

/**
 * Replaces the broker status file in one step (a new file renamed over it): test files poll it
 * while the broker starts, and a plain write, which empties the file before filling it, could be
 * read half-written (empty JSON: the file's broker tests then failed in their `beforeAll`).
 */
async function writeStatus(statusFile: string, status: Record<string, unknown>): Promise<void> {
  await writeFile(`${statusFile}.tmp`, JSON.stringify(status));
  await rename(`${statusFile}.tmp`, statusFile);
}

/**
 * Page tests need Debian's `chromium`: without it they skip (each file says why) and the run
 * says so once, loudly; under CI a missing browser fails the run.
 */
function warnWithoutBrowser(): void {
  const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('-') && !['run', 'watch', 'bench'].includes(arg));
  if (filters.length > 0 && !filters.some((filter) => /login|browser|revocation-e2e|precis|integration\/?$|^test\/?$/i.test(filter))) return;
  const reason = browserUnavailable(CHROMIUM, process.env);
  if (reason) console.warn(`\n*** BROWSER TESTS SKIPPED: ${reason} ***\n`);
}

/** One PostgreSQL for the run: DATABASE_URL if set, else an embedded cluster in a temp dir. */
export async function setup(project: TestProject): Promise<void> {
  warnWithoutBrowser();
  await startPulsar(project);
  const external = process.env.DATABASE_URL;
  if (external) {
    project.provide('adminDatabaseUrl', external);
    return;
  }
  dataDir = await mkdtemp(path.join(tmpdir(), 'custos-test-pg-'));
  // initdb runs as an unprivileged postgres user when the tests run as root.
  await chmod(dataDir, 0o755);
  embedded = await startEmbeddedPostgres({ dataDir, port: await freePort(), database: 'postgres' });
  project.provide('adminDatabaseUrl', embedded.connectionString);
}

export async function teardown(): Promise<void> {
  const broker = await pulsar;
  await broker?.stop();
  if (pulsarDir) await rm(pulsarDir, { recursive: true, force: true });
  await embedded?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
