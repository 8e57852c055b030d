import type { ConfigFiles } from './files.js';

/** Where the demo configuration registers the demo BFF (config/clients.json, client `web-bff`). */
export const DEMO_BFF_ORIGIN = 'http://localhost:3000';
export const DEMO_BFF_CLIENT_ID = 'web-bff';

/**
 * Development with the demo configuration only (the caller checks, like for the demo user): the
 * demo BFF runs on `BFF_PORT`, so the `web-bff` client's redirect, post-logout redirect and
 * back-channel logout URIs on http://localhost:3000 move to that port. Nothing else changes; a
 * production configuration is never rewritten.
 */
export function withDemoBffPort(files: ConfigFiles, port: number): ConfigFiles {
  const origin = `http://localhost:${port}`;
  const move = (uri: string) => (uri.startsWith(`${DEMO_BFF_ORIGIN}/`) ? `${origin}${uri.slice(DEMO_BFF_ORIGIN.length)}` : uri);
  return {
    ...files,
    clients: files.clients.map((client) =>
      client.client_id !== DEMO_BFF_CLIENT_ID
        ? client
        : {
            ...client,
            redirect_uris: client.redirect_uris.map(move),
            post_logout_redirect_uris: client.post_logout_redirect_uris.map(move),
            ...(client.backchannel_logout_uri ? { backchannel_logout_uri: move(client.backchannel_logout_uri) } : {}),
          },
    ),
  };
}
