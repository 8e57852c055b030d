import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { resolve } from 'node:path';
import { ConfigError } from '../../config/config-error.js';
import type { TransmitterConfig } from '../../config/ssf-receiver.js';

/**
 * The CA bundle a transmitter's servers are verified against (`tls_ca_file`), read at start-up:
 * a missing file stops start-up naming the field. Undefined: the system CAs.
 */
export function transmitterCa(transmitter: TransmitterConfig, index: number, file: string, cwd: string): string | undefined {
  if (!transmitter.tls_ca_file) return undefined;
  try {
    return readFileSync(resolve(cwd, transmitter.tls_ca_file), 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: ssf_receiver.transmitters.${index}.tls_ca_file: cannot read ${transmitter.tls_ca_file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
}

export interface HttpsRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** PEM CA bundle; default the system CAs. The certificate is always verified. */
  ca?: string;
  signal?: AbortSignal;
  /** Largest response body read; a longer one fails the request. */
  maxBytes: number;
  timeoutMs: number;
}

/**
 * One HTTPS request to a transmitter: TLS verified (`ca` or the system CAs), no redirects followed,
 * the response body bounded by `maxBytes`, the whole exchange bounded by `timeoutMs`.
 */
export function httpsRequest(url: string, options: HttpsRequest): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
    const req = request(
      url,
      { method: options.method, headers: options.headers, signal: AbortSignal.any(signals), ...(options.ca ? { ca: options.ca } : {}), rejectUnauthorized: true },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            req.destroy(new Error(`response over ${options.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
