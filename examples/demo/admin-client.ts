/**
 * What an administrator's tool does to cut a user off: an admin API token by client credentials
 * over mutual TLS with the `admin-cli` certificate (RFC 8705: the token is bound to it), then
 * `DELETE /admin/users/{id}/sessions` on the admin listener with the same certificate.
 */
import { Agent, request } from 'undici';

export interface AdminClientOptions {
  issuer: string;
  /** e.g. `https://localhost:9443`. */
  adminUrl: string;
  caPem: string;
  /** The admin-cli client's certificate and key (keys/dev/clients/admin-cli in development). */
  certPem: string;
  keyPem: string;
  clientId?: string;
}

/** The admin API's answer to a revocation (README "Revoking a user"). */
export interface RevocationSummary {
  sessions_revoked: number;
  grants_revoked: number;
  tokens_revoked: number;
  jwt_access_tokens_revoked_before: string;
  backchannel_logout: { sent: number; failed: number };
}

export interface AdminClient {
  revokeSessions(userId: string): Promise<RevocationSummary>;
  close(): Promise<void>;
}

export function createAdminClient(options: AdminClientOptions): AdminClient {
  const mtls = new Agent({ connect: { ca: options.caPem, cert: options.certPem, key: options.keyPem } });
  const json = async <T>(response: Awaited<ReturnType<typeof request>>, what: string): Promise<T> => {
    const body = (await response.body.json()) as T & { error?: string };
    if (response.statusCode !== 200) throw new Error(`${what} answered HTTP ${response.statusCode} ${body.error ?? ''}`.trim());
    return body;
  };
  return {
    async revokeSessions(userId) {
      const tokenResponse = await request(`${options.issuer}/token`, {
        method: 'POST',
        dispatcher: mtls,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: options.clientId ?? 'admin-cli', scope: 'admin', resource: 'urn:custos:admin' }).toString(),
      });
      const { access_token: token } = await json<{ access_token: string }>(tokenResponse, 'the token endpoint');
      const response = await request(`${options.adminUrl}/admin/users/${encodeURIComponent(userId)}/sessions`, {
        method: 'DELETE',
        dispatcher: mtls,
        headers: { authorization: `Bearer ${token}` },
      });
      return json<RevocationSummary>(response, 'the admin API');
    },
    close: () => mtls.close(),
  };
}
