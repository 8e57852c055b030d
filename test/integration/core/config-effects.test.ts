import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/config-error.js';
import { configDirWithClients } from '../../helpers/config-dir.js';
import { startTestApp } from '../../helpers/app.js';

describe('configuration effects at run time', () => {
  it('serves /metrics only to METRICS_ALLOW addresses', async () => {
    const app = await startTestApp({ env: { METRICS_ALLOW: '10.0.0.0/8' } });
    try {
      const denied = await request(`${app.issuer}/metrics`, { dispatcher: app.agent() });
      expect(denied.statusCode).toBe(403);
      expect(((await denied.body.json()) as { error: string }).error).toBe('forbidden');
      const health = await request(`${app.issuer}/healthz`, { dispatcher: app.agent() });
      expect(health.statusCode).toBe(200);
      await health.body.dump();
    } finally {
      await app.stop();
    }
  });

  it('binds tokens of mTLS clients by default (RFC 8705 §3) unless configured otherwise', async () => {
    const config = await configDirWithClients([
      {
        client_id: 'shipping-api',
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_san_dns: 'shipping-api.clients.custos.test',
        grant_types: ['client_credentials'],
        scope: 'orders:read',
        resources: ['https://api.custos.test/orders'],
        default_resource: 'https://api.custos.test/orders',
      },
    ]);
    const app = await startTestApp({ configDir: config.dir });
    try {
      const { status, body } = await app.token(
        { grant_type: 'client_credentials', client_id: 'shipping-api', scope: 'orders:read' },
        { agent: app.clientAgent('shipping-api') },
      );
      expect(status).toBe(200);
      expect(decodeJwt(body.access_token).cnf).toEqual({ 'x5t#S256': app.custos.devPki!.clients['shipping-api']!.x5tS256 });
    } finally {
      await app.stop();
      await config.remove();
    }
  });

  it('stops start-up when oidc-provider rejects a client, naming the client', async () => {
    const config = await configDirWithClients([
      {
        client_id: 'legacy-spa',
        token_endpoint_auth_method: 'none',
        grant_types: ['implicit'],
        response_types: ['id_token'],
        redirect_uris: ['https://spa.example/cb'],
      },
    ]);
    try {
      const error = await startTestApp({ configDir: config.dir }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/clients\.json: client legacy-spa: /);
    } finally {
      await config.remove();
    }
  });
});

describe('readiness', () => {
  it('answers 503 on /readyz once the database is unreachable, while /healthz stays 200', async () => {
    const app = await startTestApp();
    try {
      const ready = await request(`${app.issuer}/readyz`, { dispatcher: app.agent() });
      expect([ready.statusCode, await ready.body.json()]).toEqual([200, { status: 'ready' }]);
      await app.custos.db.destroy();
      const down = await request(`${app.issuer}/readyz`, { dispatcher: app.agent() });
      expect([down.statusCode, await down.body.json()]).toEqual([503, { status: 'unavailable' }]);
      const health = await request(`${app.issuer}/healthz`, { dispatcher: app.agent() });
      expect(health.statusCode).toBe(200);
      await health.body.dump();
    } finally {
      await app.stop();
    }
  });
});
