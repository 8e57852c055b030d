import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClients } from '../../../src/clients/client.repository.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { startCustos } from '../../../src/main.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

// The client file is validated whole before any of it is written: a file that start-up refuses
// leaves the clients (and their audit records and events) as they were, and start-up stops with
// one line naming the client and the field.
const ROOT = path.resolve(import.meta.dirname, '../../..');
let app: TestApp;
let configDir: string;

beforeAll(async () => {
  app = await startTestApp();
  // The next deployment's client file: a changed client, a new valid one, and one oidc-provider
  // refuses (implicit grant), listed last.
  configDir = await mkdtemp(path.join(tmpdir(), 'custos-seed-validation-'));
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  const file = path.join(configDir, 'clients.json');
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { clients: Array<Record<string, unknown>> };
  const reporting = parsed.clients.find((client) => client.client_id === 'reporting-job')!;
  reporting.client_name = 'Renamed by the next deployment';
  parsed.clients.push(
    { client_id: 'new-job', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'new-job.example', grant_types: ['client_credentials'] },
    { client_id: 'legacy-spa', token_endpoint_auth_method: 'none', grant_types: ['implicit'], response_types: ['id_token'], redirect_uris: ['https://spa.example/cb'] },
  );
  await writeFile(file, JSON.stringify(parsed, null, 2));
}, 60_000);

afterAll(async () => {
  await app?.stop();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const count = async (table: 'audit_log' | 'event_outbox') =>
  Number((await app.custos.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

describe('a client file start-up refuses', () => {
  it('changes no client: not the changed one, not the new one, not the refused one; no audit record or event', async () => {
    const before = { clients: await loadClients(app.custos.db), audit: await count('audit_log'), events: await count('event_outbox') };
    expect(before.clients.map((client) => client.clientId)).toContain('reporting-job');

    const error = await startCustos({
      env: { NODE_ENV: 'test', PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', DATABASE_URL: app.databaseUrl, KEYS_DIR: app.keysDir, CONFIG_DIR: configDir, LOG_LEVEL: 'silent' },
      cwd: ROOT,
      logDestination: { write: () => true } as never,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.stringMatching(/clients\.json: client legacy-spa: .*grant_types/)]);

    expect(await loadClients(app.custos.db)).toEqual(before.clients);
    expect(await count('audit_log')).toBe(before.audit);
    expect(await count('event_outbox')).toBe(before.events);
  }, 60_000);

  it('custos serve stops with one line naming the client and the field, and the table stays as it was', async () => {
    const before = await loadClients(app.custos.db);
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/custos.js'), 'serve'], {
        cwd: ROOT,
        env: {
          ...process.env,
          NODE_ENV: 'test',
          LOG_LEVEL: 'silent',
          PORT: '0',
          ADMIN_PORT: '0',
          HOST: '127.0.0.1',
          WORKERS: '1',
          DATABASE_URL: app.databaseUrl,
          KEYS_DIR: app.keysDir,
          CONFIG_DIR: configDir,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^custos: invalid configuration: \S*clients\.json: client legacy-spa: .*grant_types/);
    expect(result.stdout).not.toContain('Custos is running');
    expect(await loadClients(app.custos.db)).toEqual(before);
  }, 60_000);
});
