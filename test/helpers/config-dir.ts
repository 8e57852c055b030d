import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashSecret } from '../../src/iam/secret-hash.js';

const CONFIG = path.resolve(import.meta.dirname, '../../config');

/** A temporary copy of the demo `config/` directory, with extra clients. */
export interface TempConfigDir {
  dir: string;
  remove(): Promise<void>;
}

/**
 * Copies `config/` into a temp directory and appends `clients` to `clients.json`
 * (for `startTestApp({ configDir })`, which leaves a given directory in place: call `remove()`).
 */
export async function configDirWithClients(clients: Record<string, unknown>[]): Promise<TempConfigDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'custos-config-'));
  await cp(CONFIG, dir, { recursive: true });
  const file = path.join(dir, 'clients.json');
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { clients: Record<string, unknown>[] };
  parsed.clients.push(...clients);
  await writeFile(file, JSON.stringify(parsed, null, 2));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A `client_secret_post` client_credentials client for the orders API (the demo config has none). */
export async function clientSecretPostClient([clientId, secret]: [string, string]): Promise<Record<string, unknown>> {
  return {
    client_id: clientId,
    client_secret_hash: await hashSecret(secret),
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials'],
    scope: 'orders:read',
    resources: ['https://api.custos.test/orders'],
    default_resource: 'https://api.custos.test/orders',
  };
}
