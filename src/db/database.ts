import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<Record<string, unknown>, string, string>;

/** One row per oidc-provider model instance (sessions, grants, codes, tokens, ...). */
export interface OidcModelTable {
  model: string;
  id: string;
  payload: Json;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Timestamp | null;
  consumed_at: Timestamp | null;
  created_at: Generated<Timestamp>;
}

/** Audit record of every RFC 8693 token exchange. */
export interface TokenExchangeTable {
  id: Generated<string>;
  jti: string;
  client_id: string;
  subject: string;
  subject_token_jti: string | null;
  actor_chain: Json;
  scopes: string[];
  audiences: string[];
  event_payload_hash: string;
  expires_at: Timestamp;
  created_at: Generated<Timestamp>;
}

/** The kysely schema of the Custos database. */
export interface Database {
  oidc_model: OidcModelTable;
  token_exchange: TokenExchangeTable;
}
