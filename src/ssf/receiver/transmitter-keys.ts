import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { resolve } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../../config/config-error.js';
import type { TransmitterConfig } from '../../config/ssf-receiver.js';

/** Largest JWKS document read (a key set is a few kilobytes). */
const MAX_JWKS_BYTES = 256 * 1024;

/**
 * GET over TLS verified against `ca` (or the system CAs), for jose's remote key set: no redirects
 * followed, at most {@link MAX_JWKS_BYTES}, aborted by jose's timeout signal.
 */
function httpsFetch(ca: string | undefined): FetchImplementation {
  return (url, options) =>
    new Promise<Response>((resolvePromise, reject) => {
      const headers = Object.fromEntries(options.headers.entries());
      const req = get(url, { headers, signal: options.signal, ...(ca ? { ca } : {}), rejectUnauthorized: true }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_JWKS_BYTES) {
            req.destroy(new Error(`JWKS response over ${MAX_JWKS_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolvePromise(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500 })));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
}

/**
 * The key resolver of one transmitter: its inline `jwks`, or its `jwks_uri` fetched over verified
 * TLS (`tls_ca_file` or the system CAs), cached for ten minutes and fetched again when a SET names
 * a `kid` the cache lacks (at most every 30 s: a flood of unknown `kid`s does not become a flood of
 * fetches). Reads `tls_ca_file` now: a missing file stops start-up naming the field.
 */
export function transmitterKeys(transmitter: TransmitterConfig, index: number, file: string, cwd: string): JWTVerifyGetKey {
  if (transmitter.jwks) return createLocalJWKSet(transmitter.jwks as JSONWebKeySet);
  let ca: string | undefined;
  if (transmitter.tls_ca_file) {
    try {
      ca = readFileSync(resolve(cwd, transmitter.tls_ca_file), 'utf8');
    } catch (error) {
      throw new ConfigError([`${file}: ssf_receiver.transmitters.${index}.tls_ca_file: cannot read ${transmitter.tls_ca_file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
    }
  }
  return createRemoteJWKSet(new URL(transmitter.jwks_uri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000, [customFetch]: httpsFetch(ca) });
}
