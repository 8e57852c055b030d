import canonicalize from 'canonicalize';
import type { ClientConfig } from '../config/files.js';

/** Who manages a client: the seed file (`config`, refused by the API) or the admin API (`api`). */
export type ClientManager = 'config' | 'api';
export type ClientStatus = 'active' | 'disabled';

/** The `tls_client_auth` subject properties (RFC 8705 §2.1.2) Custos binds a certificate by. */
export const SUBJECT_PROPERTIES = ['tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_subject_dn'] as const;
export type SubjectProperty = (typeof SUBJECT_PROPERTIES)[number];

/**
 * A certificate binding: one `tls_client_auth_*` subject (`tls_client_auth`, RFC 8705 §2.1) or a
 * JWK set whose keys carry the certificate in `x5c` (`self_signed_tls_client_auth`, RFC 8705 §2.2).
 */
export type CertificateBinding = Partial<Record<SubjectProperty, string>> & { jwks?: { keys: Array<Record<string, unknown>> } };

/** A client's metadata without its id, secrets or certificate bindings (stored as `client.metadata`). */
export type StoredMetadata = Omit<ClientConfig, 'client_id' | 'client_secret_hash' | SubjectProperty> & { jwks?: ClientConfig['jwks'] };

export interface StoredSecret {
  id: string;
  hash: string;
  createdAt: Date;
  /** The end of a rotation's overlap; null: no end. */
  expiresAt: Date | null;
}

export interface StoredCertificate {
  id: string;
  binding: CertificateBinding;
  createdAt: Date;
  retiredAt: Date | null;
}

/** A client as the database holds it. */
export interface StoredClient {
  clientId: string;
  metadata: StoredMetadata;
  status: ClientStatus;
  managedBy: ClientManager;
  secrets: StoredSecret[];
  certificates: StoredCertificate[];
  createdAt: Date;
  updatedAt: Date;
}

const isMtls = (method: string) => method === 'tls_client_auth' || method === 'self_signed_tls_client_auth';

/**
 * Splits a client's configuration into what is stored where: metadata, the secret hash, and the
 * certificate binding (the `tls_client_auth_*` subject, or the `jwks` of a
 * `self_signed_tls_client_auth` client; a `private_key_jwt` client's `jwks` stays metadata).
 */
export function splitClientConfig(client: ClientConfig): { metadata: StoredMetadata; secretHash?: string; binding?: CertificateBinding } {
  const { client_id: _id, client_secret_hash: secretHash, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_subject_dn, jwks, ...rest } = client;
  const metadata: StoredMetadata = { ...rest };
  let binding: CertificateBinding | undefined;
  if (client.token_endpoint_auth_method === 'self_signed_tls_client_auth') {
    if (jwks) binding = { jwks };
  } else {
    if (jwks) metadata.jwks = jwks;
    const subject = { tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_subject_dn };
    const entry = Object.entries(subject).find(([, value]) => value !== undefined);
    if (entry) binding = { [entry[0]]: entry[1] };
  }
  return { metadata, ...(secretHash ? { secretHash } : {}), ...(binding ? { binding } : {}) };
}

/** Whether a secret is usable at `now` (no end, or an end still ahead). */
export const secretLive = (secret: StoredSecret, now = Date.now()) => secret.expiresAt === null || secret.expiresAt.getTime() > now;

/**
 * The client as oidc-provider and the rest of Custos see it (the configuration shape): the first
 * live secret as `client_secret_hash` (the others are checked by {@link StoredClient.secrets}),
 * the first active `tls_client_auth_*` binding, and for `self_signed_tls_client_auth` the keys of
 * every active binding in one `jwks` (any of the certificates authenticates).
 */
export function toClientConfig(client: StoredClient): ClientConfig {
  const active = client.certificates.filter((certificate) => certificate.retiredAt === null);
  const config = { ...client.metadata, client_id: client.clientId } as ClientConfig;
  // Which secrets are live is decided per request (registry.secretHashes); an expired one still
  // keeps the metadata valid for oidc-provider.
  const secret = client.secrets.find((candidate) => secretLive(candidate)) ?? client.secrets[0];
  if (secret) config.client_secret_hash = secret.hash;
  if (client.metadata.token_endpoint_auth_method === 'self_signed_tls_client_auth') {
    const keys = active.flatMap((certificate) => certificate.binding.jwks?.keys ?? []);
    if (keys.length > 0) config.jwks = { keys };
  } else if (isMtls(client.metadata.token_endpoint_auth_method)) {
    const first = active.find((certificate) => SUBJECT_PROPERTIES.some((property) => certificate.binding[property] !== undefined));
    for (const property of SUBJECT_PROPERTIES) if (first?.binding[property] !== undefined) config[property] = first.binding[property];
  }
  return config;
}

/** Canonical JSON (RFC 8785) of a value: equal when the values are equal, whatever the key order. */
export const canonical = (value: unknown): string => canonicalize(value) ?? '';
