/**
 * The ready-to-paste RFC 8693 token exchange (README "Token exchange for events") for the signed-in
 * user's access token: `orders-api`, over mTLS with its dev certificate, exchanges it for a resume
 * token bound to one example event.
 */
import { eventPayloadHash } from '../../src/verify/index.js';

export const EXAMPLE_EVENT = { type: 'order.placed', orderId: 'o-1001', amount: 4200 };

export function exchangeCommand(options: { issuer: string; keysDir: string; accessToken: string }): string {
  const keys = options.keysDir.replace(/\/$/, '');
  return [
    `# event: ${JSON.stringify(EXAMPLE_EVENT)}  (its hash: npx custos payload-hash event.json)`,
    `curl --cacert ${keys}/ca.pem \\`,
    `  --cert ${keys}/clients/orders-api/cert.pem --key ${keys}/clients/orders-api/key.pem \\`,
    '  -d client_id=orders-api \\',
    '  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\',
    `  -d subject_token=${options.accessToken} \\`,
    '  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\',
    '  -d scope=resume_orders \\',
    '  -d audience=https://events.custos.test/orders \\',
    `  -d event_payload_hash=${eventPayloadHash(EXAMPLE_EVENT)} \\`,
    `  ${options.issuer.replace(/\/$/, '')}/token`,
  ].join('\n');
}
