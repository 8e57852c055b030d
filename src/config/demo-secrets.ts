import type { ClientConfig } from './files.js';

/**
 * The client secrets of the demo configuration (`config/clients.json`, marked `"demo": true`).
 * They are published (README, the start-up banner, `config/clients.json`'s comment), so a
 * production client whose `client_secret_hash` verifies one of them has a secret anyone knows.
 * The one list of them: the banner and the production check read it from here.
 */
export const DEMO_CLIENT_SECRETS: Readonly<Record<string, string>> = {
  'web-bff': 'dev-web-bff-secret-change-me',
  'reporting-job': 'dev-reporting-job-secret-change-me',
};

/**
 * Production start-up check: one line per configured client whose `client_secret_hash` verifies
 * one of the {@link DEMO_CLIENT_SECRETS}, whatever the client is called (a renamed demo client
 * is no safer); `verify` is argon2id verification (RFC 9106), each hash against each demo secret.
 * The lines name the client and the file, never the secret.
 */
export async function demoSecretProblems(
  clients: readonly ClientConfig[],
  file: string,
  verify: (hash: string, secret: string) => Promise<boolean>,
): Promise<string[]> {
  const secrets = Object.values(DEMO_CLIENT_SECRETS);
  const found = await Promise.all(
    clients.map(async (client, index) => {
      const hash = client.client_secret_hash;
      if (hash === undefined) return undefined;
      const matches = await Promise.all(secrets.map((secret) => verify(hash, secret)));
      return matches.some(Boolean)
        ? `${file}: clients.${index}.client_secret_hash: the secret of client "${client.client_id}" is a demo secret published in the README — refused in production; set a new one (\`echo -n "$SECRET" | npx custos clients hash-secret\`)`
        : undefined;
    }),
  );
  return found.filter((line): line is string => line !== undefined);
}
