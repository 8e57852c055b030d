/**
 * The demo web BFF (README "Log in through a web BFF"):
 *
 *   npm start              # Custos, with the demo user alice (password in the banner)
 *   npm run example:bff    # this BFF on http://localhost:3000
 *
 * Open http://localhost:3000, sign in as alice: the page shows the verified ID token claims
 * (roles, email), the access token's claims with a ready-to-paste token exchange command, and a
 * sign-out button (RP-initiated logout; Custos also calls the BFF's back-channel logout endpoint).
 * Settings: CUSTOS_ISSUER (default https://localhost:8443), CUSTOS_CA_FILE (default keys/dev/ca.pem),
 * BFF_PORT (default 3000; give Custos the same BFF_PORT so the demo client's redirect URIs follow).
 * `npm run demo` runs all of it (and an orders API behind the continuous-authorization proxy) at once.
 */
import { readFile } from 'node:fs/promises';
import { startBff, type RunningBff } from './bff/bff-app.js';

const issuer = process.env.CUSTOS_ISSUER ?? 'https://localhost:8443';
const caFile = process.env.CUSTOS_CA_FILE ?? 'keys/dev/ca.pem';
const port = Number(process.env.BFF_PORT ?? 3000);

const fail = (line: string): never => {
  console.error(`example:bff: ${line}`);
  process.exit(1);
};
if (!Number.isInteger(port) || port < 1 || port > 65_535) fail(`BFF_PORT=${process.env.BFF_PORT} is not a port (1 to 65535)`);
const bff: RunningBff = await startBff({ port, host: 'localhost' }).catch((error: Error) => fail(error.message));
try {
  await bff.connect({
    issuer,
    clientId: 'web-bff',
    clientSecret: process.env.BFF_CLIENT_SECRET ?? 'dev-web-bff-secret-change-me',
    caPem: await readFile(caFile, 'utf8'),
  });
} catch (error) {
  await bff.close();
  fail(`cannot reach Custos at ${issuer} (${(error as Error).message}); is \`npm start\` running?`);
}
console.log(`Demo BFF on ${bff.url} (issuer ${issuer}). Open it in a browser and sign in.`);
if (port !== 3000) console.log(`Custos must know this port: start it with BFF_PORT=${port} (its demo client then redirects to ${bff.url}/callback).`);
const stop = () => void bff.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
