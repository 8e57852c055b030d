/**
 * The demo web BFF (README "Log in through a web BFF"):
 *
 *   npm start              # Custos, with the demo user alice (password in the banner)
 *   npm run example:bff    # this BFF on http://localhost:3000
 *
 * Open http://localhost:3000, sign in as alice: the page shows the verified ID token claims
 * (roles, email) and a sign-out button (RP-initiated logout; Custos also calls the BFF's
 * back-channel logout endpoint). Settings: CUSTOS_ISSUER (default https://localhost:8443),
 * CUSTOS_CA_FILE (default keys/dev/ca.pem), BFF_PORT (default 3000).
 */
import { readFile } from 'node:fs/promises';
import { startBff } from './bff/bff-app.js';

const issuer = process.env.CUSTOS_ISSUER ?? 'https://localhost:8443';
const caFile = process.env.CUSTOS_CA_FILE ?? 'keys/dev/ca.pem';
const port = Number(process.env.BFF_PORT ?? 3000);

const bff = await startBff({ port, host: 'localhost' });
try {
  await bff.connect({
    issuer,
    clientId: 'web-bff',
    clientSecret: process.env.BFF_CLIENT_SECRET ?? 'dev-web-bff-secret-change-me',
    caPem: await readFile(caFile, 'utf8'),
  });
} catch (error) {
  console.error(`cannot reach Custos at ${issuer} (${(error as Error).message}); is \`npm start\` running?`);
  await bff.close();
  process.exit(1);
}
console.log(`Demo BFF on ${bff.url} (issuer ${issuer}). Open it in a browser and sign in.`);
const stop = () => void bff.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
