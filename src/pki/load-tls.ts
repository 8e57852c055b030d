import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/config-error.js';
import type { AppConfig } from '../config/load-config.js';
import type { TlsMaterial } from '../http/https-server.js';
import { ensureDevPki, type DevPki } from './dev-pki.js';

/**
 * The server's TLS material: the configured files (`TLS_CERT_FILE`, `TLS_KEY_FILE`,
 * `TLS_CLIENT_CA_FILE`) when all three are set, else the development PKI in the keys directory
 * (created on first use, with client certificates for the `tls_client_auth` clients).
 */
export async function loadTls(config: AppConfig, cwd: string): Promise<{ tls: TlsMaterial; devPki?: DevPki }> {
  const { env } = config;
  if (env.TLS_CERT_FILE && env.TLS_KEY_FILE && env.TLS_CLIENT_CA_FILE) {
    const read = (name: string, file: string) =>
      fs.readFile(path.resolve(cwd, file), 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new ConfigError([`environment variable ${name}: cannot read ${file} (${error.code ?? error.message})`]);
      });
    const [certPem, keyPem, clientCaPem] = await Promise.all([
      read('TLS_CERT_FILE', env.TLS_CERT_FILE),
      read('TLS_KEY_FILE', env.TLS_KEY_FILE),
      read('TLS_CLIENT_CA_FILE', env.TLS_CLIENT_CA_FILE),
    ]);
    return { tls: { certPem, keyPem, clientCaPem } };
  }
  const mtlsClients = config.files.clients
    .filter((client) => client.token_endpoint_auth_method === 'tls_client_auth')
    .map((client) => client.client_id);
  const devPki = await ensureDevPki({ dir: config.keysDir, hostnames: [new URL(config.issuer ?? 'https://localhost').hostname], clients: mtlsClients });
  return { tls: { certPem: devPki.serverCertPem, keyPem: devPki.serverKeyPem, clientCaPem: devPki.caPem }, devPki };
}
