import { BlockList } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/http/metrics.js';
import { opsRoutes } from '../../../src/http/ops.routes.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** `/metrics` of an app whose metrics text comes from `exposition` (a cluster worker's: the primary's aggregate). */
async function metricsOf(exposition?: () => Promise<string>) {
  const metrics = createMetrics({ exposition });
  metrics.tokensIssued.inc({ grant_type: 'client_credentials' });
  const allow = new BlockList();
  allow.addAddress('127.0.0.1');
  const app = new Koa();
  app.use(opsRoutes({ metrics, ready: async () => true, metricsAllow: allow }) as Koa.Middleware);
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  const response = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

describe('/metrics text source (issue 21 #1)', () => {
  it("serves this process's registry by default", async () => {
    const { status, text } = await metricsOf();
    expect(status).toBe(200);
    expect(text).toContain('custos_tokens_issued_total{grant_type="client_credentials"} 1');
  });

  it('serves what the exposition gives (all workers), and 503 with an OAuth-style body when it cannot be collected', async () => {
    const given = await metricsOf(async () => 'custos_worker_connections_total{worker="7"} 3\n');
    expect(given.status).toBe(200);
    expect(given.text).toBe('custos_worker_connections_total{worker="7"} 3\n');
    expect(String(given.headers['content-type'])).toMatch(/^text\/plain/);

    const failed = await metricsOf(() => Promise.reject(new Error('a worker did not send its metrics in time')));
    expect(failed.status).toBe(503);
    expect(failed.headers['retry-after']).toBe('1');
    expect(JSON.parse(failed.text)).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(failed.text).not.toContain('in time');
  });
});
