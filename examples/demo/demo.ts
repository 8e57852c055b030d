/**
 * `npm run demo`: the whole product at once (README "The whole product in one command").
 *
 * Starts the local Pulsar broker (or, without Java/Maven, Custos's log sink: one line says so),
 * Custos, the orders API behind the continuous-authorization proxy, and the demo BFF. Open the
 * BFF, sign in as alice (password printed below), call the orders API, press "Revoke my sessions"
 * and see the next call refused, with the time it took. Ctrl-C stops all of it.
 *
 * Env: BFF_PORT (default 3000), PORT / ADMIN_PORT (Custos; default: free ports), DEMO_EVENTS
 * (pulsar | log; default pulsar when Java 17+ and Maven are present), PULSAR_WS_URL (use a running
 * broker), DEMO_DATA_DIR (default: a temporary directory, removed at exit), LOG_LEVEL (Custos; warn).
 */
import path from 'node:path';
import { ROOT, startDemo, type RunningDemo } from './start-demo.js';

const say = (line: string) => console.log(line);
const fail = (line: string): never => {
  console.error(`demo: ${line}`);
  process.exit(1);
};
const portOf = (name: string, fallback: number): number => {
  const raw = process.env[name];
  const port = raw === undefined || raw === '' ? fallback : Number(raw);
  return Number.isInteger(port) && port >= 0 && port <= 65_535 ? port : fail(`${name}=${raw} is not a port (0 to 65535)`);
};

const options = {
  bffPort: portOf('BFF_PORT', 3000),
  custosPort: portOf('PORT', 0),
  adminPort: portOf('ADMIN_PORT', 0),
  events: process.env.DEMO_EVENTS || undefined,
  pulsarWsUrl: process.env.PULSAR_WS_URL || undefined,
  dataDir: process.env.DEMO_DATA_DIR ? path.resolve(process.env.DEMO_DATA_DIR) : undefined,
  log: (line: string) => say(`  ${line}`),
};

let demo: RunningDemo | undefined;
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping the demo...`);
  const done = demo ? demo.stop() : Promise.resolve();
  done.then(
    () => {
      say('demo stopped');
      process.exit(0);
    },
    (error: Error) => fail(`while stopping: ${error.message}`),
  );
};
// While starting, a signal waits for the start to finish (or fail), then stops what started.
process.on('SIGINT', () => (demo ? shutdown('SIGINT') : (stopping = true)));
process.on('SIGTERM', () => (demo ? shutdown('SIGTERM') : (stopping = true)));

say('Starting the Custos demo (Ctrl-C stops it)...');
try {
  demo = await startDemo(options);
} catch (error) {
  fail((error as Error).message);
}
if (stopping) {
  stopping = false;
  shutdown('signal during start');
} else {
  const ca = path.relative(process.cwd(), path.join(ROOT, 'keys/dev/ca.pem')) || 'keys/dev/ca.pem';
  say(
    [
      '',
      `Demo BFF:        ${demo!.bffUrl}   <- open this`,
      `Custos:          ${demo!.issuer} (admin API ${demo!.adminUrl})`,
      `Orders API:      ${demo!.ordersUrl} (continuous-authorization proxy)`,
      demo!.feed.description,
      demo!.demoUser ? `Sign in as:      ${demo!.demoUser.username} / ${demo!.demoUser.password}` : 'Sign in as:      alice (password from an earlier run of this DEMO_DATA_DIR)',
      `Browser warning "Your connection is not private" on the sign-in page: trust the dev CA ${ca} (README "Trust the development CA").`,
      'Then: Call the orders API (allowed) -> Revoke my sessions -> the next call is refused, with the time it took.',
      'DEMO READY',
    ].join('\n'),
  );
}
