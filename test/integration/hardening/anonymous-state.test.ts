import { sql } from 'kysely';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formBody, startTestApp, WEB_BFF_AUTHORIZATION, type TestApp } from '../../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

async function send(method: string, path: string, form?: Record<string, string>) {
  const response = await request(`${app.issuer}${path}`, {
    method: method as 'GET',
    dispatcher: app.agent(),
    ...(form ? { body: formBody(form), headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
  });
  await response.body.dump();
  return response.statusCode;
}

/** Rows that outlive `seconds` from now (or never expire). */
async function rowsOutliving(seconds: number) {
  const { rows } = await sql<{ model: string; expires_at: Date | null }>`
    select model, expires_at from oidc_model
    where expires_at is null or expires_at > now() + make_interval(secs => ${seconds})`.execute(app.custos.db);
  return rows;
}

describe('anonymous requests create no durable rows (issue 10 #4)', () => {
  it('logout prompts, authorization requests and failed confirmations store at most 10 minutes of state', async () => {
    for (let i = 0; i < 20; i++) expect(await send('GET', '/session/end')).toBe(200);
    expect(await send('GET', '/session/end?state=s&client_id=web-bff&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A3000%2F')).toBe(200);
    expect(await send('POST', '/session/end', { state: 'x' })).toBeLessThan(500);
    expect(await send('POST', '/session/end/confirm', { xsrf: 'forged', logout: 'yes' })).toBeLessThan(500);
    expect(await send('GET', '/session/end/success')).toBeLessThan(500);
    // A valid authorization request awaits a login: that interaction is legitimate, and short-lived.
    expect(await send('GET', `/auth?${WEB_BFF_AUTHORIZATION}`)).toBe(303);
    expect(await send('GET', '/auth?client_id=web-bff')).toBeLessThan(500);
    expect(await send('GET', '/auth/unknown-uid')).toBeLessThan(500);
    expect(await send('POST', '/token', { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x'.repeat(20) })).toBe(401);

    const { rows: stored } = await sql<{ model: string }>`select model from oidc_model`.execute(app.custos.db);
    // The requests above did store something (the check below would prove nothing otherwise).
    expect(stored.map((row) => row.model)).toEqual(expect.arrayContaining(['Session', 'Interaction']));
    expect(await rowsOutliving(10 * 60 + 5)).toEqual([]);
  });
});
