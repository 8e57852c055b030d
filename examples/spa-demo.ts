/**
 * The demo single-page app (docs/bff-developers.md "A single-page app with DPoP"):
 *
 *   npm start                # Custos, with the demo user alice (password in the banner)
 *   npm run example:spa      # this SPA and its API on http://localhost:3002
 *
 * Open http://localhost:3002 in a browser that trusts the dev CA (keys/dev/ca.pem), sign in as
 * alice: the page shows its DPoP-bound token (`cnf.jkt` = its non-extractable key) and calls the
 * orders API, which checks the token and the proof with custos/verify.
 * Settings: CUSTOS_ISSUER (default https://localhost:8443), CUSTOS_CA_FILE (default keys/dev/ca.pem),
 * SPA_PORT (default 3002, where the demo client `spa-demo` is registered; another port needs a
 * client registered with that redirect URI, SPA_CLIENT_ID).
 */
import { readFile } from 'node:fs/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import { startSpa } from './spa/spa-server.js';

const issuer = process.env.CUSTOS_ISSUER ?? 'https://localhost:8443';
const caFile = process.env.CUSTOS_CA_FILE ?? 'keys/dev/ca.pem';

const fail = (line: string): never => {
  console.error(`example:spa: ${line}`);
  process.exit(1);
};
const caPem = await readFile(caFile, 'utf8').catch((error: Error) => fail(`cannot read ${caFile} (${error.message}); run \`npm start\` once to create the dev PKI`));
const trustDevCa = new Agent({ connect: { ca: caPem } });
const fetchTrusting = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch;
const port = Number(process.env.SPA_PORT ?? 3002);
if (!Number.isInteger(port) || port < 1 || port > 65_535) fail(`SPA_PORT=${process.env.SPA_PORT} is not a port (1 to 65535)`);
// The registered redirect URI of the demo client `spa-demo` (config/clients.json) is on port 3002.
const spa = await startSpa({ issuer, port, clientId: process.env.SPA_CLIENT_ID, fetch: fetchTrusting, log: (line) => console.log(line) }).catch((error: Error) =>
  fail(error.message),
);
console.log(`Demo SPA on ${spa.url} (issuer ${issuer}). Open it in a browser that trusts ${caFile} and sign in.`);
const stop = () => void spa.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
