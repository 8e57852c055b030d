/** Demo constants and form encoding shared by tests and benches (no test-runner imports here). */

export function formBody(form: Record<string, string | string[]>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, item);
  }
  return params.toString();
}

/** Demo credentials from config/clients.json. */
export const DEMO = {
  reportingJob: ['reporting-job', 'dev-reporting-job-secret-change-me'] as [string, string],
  webBff: ['web-bff', 'dev-web-bff-secret-change-me'] as [string, string],
  ordersResource: 'https://api.custos.test/orders',
  eventsResource: 'https://events.custos.test/orders',
  adminResource: 'urn:custos:admin',
};
