#!/usr/bin/env node
// Container health check: exit 0 when this host's Custos answers 200 on /healthz, else 1.
// Plain Node (no curl in the image). It probes its own process over loopback, so it checks
// liveness, not the certificate: the server certificate need not name the loopback address.
import { request } from 'node:https';

// A wildcard listener (the default `::` is dual-stack) answers on 127.0.0.1; no name resolution needed.
const host = !process.env.HOST || ['::', '0.0.0.0'].includes(process.env.HOST) ? '127.0.0.1' : process.env.HOST;
const req = request(
  { host, port: Number(process.env.PORT || 8443), path: '/healthz', rejectUnauthorized: false, timeout: 4000 },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
req.end();
