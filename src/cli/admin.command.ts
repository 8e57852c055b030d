import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { Command } from 'commander';

/** Where `custos admin token` finds its defaults. */
export interface AdminCommandDeps {
  /** KEYS_DIR (keys/dev outside production): the dev CA and the demo clients' certificates live there. */
  keysDir: () => string;
  /** ISSUER, or https://localhost:<PORT>. */
  issuer: () => string;
}

interface TokenOptions {
  issuer?: string;
  clientId: string;
  cert?: string;
  key?: string;
  ca?: string;
  resource: string;
  scope: string;
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** RFC 6749 §4.4 client_credentials over mutual TLS (RFC 8705): the token is bound to `cert`. */
async function requestAdminToken(options: Required<TokenOptions>): Promise<string> {
  const [cert, key, ca] = await Promise.all([readPem(options.cert, 'client certificate'), readPem(options.key, 'client key'), readPem(options.ca, 'CA bundle')]);
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: options.clientId, scope: options.scope, resource: options.resource }).toString();
  if (!URL.canParse(options.issuer) || new URL(options.issuer).protocol !== 'https:') throw new Error(`issuer ${options.issuer} is not an https URL`);
  const url = new URL(`${options.issuer.replace(/\/$/, '')}/token`);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', cert, key, ca, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => reject(new Error(`cannot reach ${url.href}: ${(error as NodeJS.ErrnoException).code ?? error.message}`)));
    req.end(body);
  });
  let parsed: { access_token?: unknown; error?: unknown; error_description?: unknown } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // reported below
  }
  if (status !== 200 || typeof parsed.access_token !== 'string') {
    const reason = typeof parsed.error === 'string' ? `${parsed.error}${typeof parsed.error_description === 'string' ? `: ${parsed.error_description}` : ''}` : `HTTP ${status}`;
    throw new Error(`token request refused (${reason})`);
  }
  return parsed.access_token;
}

/** `custos admin token`: prints an admin API access token bound to the admin client's certificate. */
export function registerAdminCommands(program: Command, deps: AdminCommandDeps): void {
  const admin = program.command('admin').description('admin API helpers');
  admin
    .command('token')
    .description('print an admin API access token (client_credentials over mTLS; bound to the certificate, so present the same one to the admin API)')
    .option('--issuer <url>', 'issuer URL (default: ISSUER, or https://localhost:<PORT>)')
    .option('--client-id <id>', 'the admin client', 'admin-cli')
    .option('--cert <file>', "client certificate (default: <KEYS_DIR>/clients/<client-id>/cert.pem)")
    .option('--key <file>', "client private key (default: <KEYS_DIR>/clients/<client-id>/key.pem)")
    .option('--ca <file>', "CA bundle that signed the server's certificate (default: <KEYS_DIR>/ca.pem)")
    .option('--resource <uri>', 'resource indicator (RFC 8707)', 'urn:custos:admin')
    .option('--scope <scope>', 'scope', 'admin')
    .action(async (options: TokenOptions) => {
      const keysDir = deps.keysDir();
      const clientDir = path.join(keysDir, 'clients', options.clientId);
      const token = await requestAdminToken({
        issuer: options.issuer ?? deps.issuer(),
        clientId: options.clientId,
        cert: options.cert ?? path.join(clientDir, 'cert.pem'),
        key: options.key ?? path.join(clientDir, 'key.pem'),
        ca: options.ca ?? path.join(keysDir, 'ca.pem'),
        resource: options.resource,
        scope: options.scope,
      });
      process.stdout.write(`${token}\n`);
    });
}
