import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { TransmitterConfig } from '../../config/ssf-receiver.js';
import { httpsRequest } from './https-client.js';

/** Largest JWKS document read (a key set is a few kilobytes). */
const MAX_JWKS_BYTES = 256 * 1024;

/** jose's remote key set fetches through {@link httpsRequest}: verified TLS against `ca`, bounded, aborted by jose's timeout. */
function httpsFetch(ca: string | undefined): FetchImplementation {
  return async (url, options) => {
    const { status, body } = await httpsRequest(url, {
      method: 'GET',
      headers: Object.fromEntries(options.headers.entries()),
      ca,
      signal: options.signal,
      maxBytes: MAX_JWKS_BYTES,
      timeoutMs: 5000,
    });
    return new Response(new Uint8Array(body), { status });
  };
}

/**
 * The key resolver of one transmitter: its inline `jwks`, or its `jwks_uri` fetched over verified
 * TLS (`ca`: its `tls_ca_file`, else the system CAs), cached for ten minutes and fetched again when
 * a SET names a `kid` the cache lacks (at most every 30 s: a flood of unknown `kid`s does not
 * become a flood of fetches).
 */
export function transmitterKeys(transmitter: TransmitterConfig, ca: string | undefined): JWTVerifyGetKey {
  if (transmitter.jwks) return createLocalJWKSet(transmitter.jwks as JSONWebKeySet);
  return createRemoteJWKSet(new URL(transmitter.jwks_uri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000, [customFetch]: httpsFetch(ca) });
}
