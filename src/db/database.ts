import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<Record<string, unknown>, string, string>;
/** A timestamp the database fills in by default. */
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

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
  /** Issue time of the user token at the root of this exchange chain (null for rows before it was recorded). */
  root_issued_at: Timestamp | null;
  /** DPoP key thumbprint (`cnf.jkt`, RFC 9449 §6.1) of a DPoP-bound subject token, else null. */
  subject_jkt: string | null;
}

/** Per-subject revocation cut-off: every token of `subject` issued at or before it is revoked. */
export interface SubjectRevocationTable {
  subject: string;
  revoked_before: Timestamp;
}

/**
 * Per-session revocation: JWT access tokens and resume tokens carrying a revoked `sid` are refused
 * (a `sid` is one client's authorization in one browser session: one grant).
 */
export interface SessionRevocationTable {
  sid: string;
  subject: string | null;
  client_id: string | null;
  /** The path that revoked it: `logout`, `refresh_token_reuse`, `code_replay`, `token_revocation`. */
  reason: string;
  revoked_at: DefaultedTimestamp;
}

/** A person who can log in (issue 7). `username` is unique case-insensitively. */
export interface IamUserTable {
  id: Generated<string>;
  /** As created, after RFC 8265 UsernameCasePreserved preparation (width mapping, NFC). */
  username: string;
  /** RFC 8265 UsernameCaseMapped form of `username` (also lower-cased): unique, what lookups compare. */
  username_key: string;
  email: string | null;
  /** argon2id hash; null: the account cannot log in with a password. */
  password_hash: string | null;
  disabled: Generated<boolean>;
  password_changed_at: Timestamp | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface IamRoleTable {
  name: string;
  description: string | null;
  created_at: DefaultedTimestamp;
}

export interface IamUserRoleTable {
  user_id: string;
  role: string;
  created_at: DefaultedTimestamp;
}

/** Who did what to whom, with which outcome: every authentication event and admin action. */
export interface AuditLogTable {
  id: Generated<string>;
  at: DefaultedTimestamp;
  /** `user:<id>`, `client:<client_id>`, `cli`, `system` or `anonymous`. */
  actor: string;
  /** Dotted action name, e.g. `login.failure`, `user.create`, `sessions.revoke`. */
  action: string;
  /** `user:<id>`, `role:<name>`, ... */
  target: string | null;
  outcome: 'success' | 'failure' | 'denied';
  client_address: string | null;
  request_id: string | null;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
}

/** Transactional outbox of IAM events, published by the relay (issue 9). */
export interface EventOutboxTable {
  id: Generated<string>;
  event_id: string;
  type: string;
  /** Subject id (the user's id): the Pulsar message key, so events of one user stay ordered. */
  subject: string;
  payload: Json;
  txid: Generated<string>;
  occurred_at: DefaultedTimestamp;
  sequence_id: string | null;
  published_at: Timestamp | null;
  /** 1, 2, 3, ... per subject in commit order (migration 20261130020900). */
  subject_version: Generated<string>;
}

/** Per-subject event counter; its row lock orders one subject's event-writing transactions. */
export interface EventSubjectVersionTable {
  subject: string;
  version: string;
}

/** The relay's last handed-out broker sequence id (one row, id 1). */
export interface EventRelayStateTable {
  id: number;
  last_sequence_id: string;
}

/** Failed-login counters per account and per address (login-throttle.repository.ts; expire in epoch ms). */
export interface LoginThrottleTable {
  key: string;
  points: number;
  expire: string | null;
}

/** A user's confirmed TOTP authenticator (migration 20261205110000; src/signin/). */
export interface SigninTotpTable {
  user_id: string;
  secret: string;
  /** Last accepted RFC 6238 time step (int8, read as a string). */
  last_step: ColumnType<string, string | number, string | number>;
  created_at: ColumnType<Date, never, never>;
  last_used_at: ColumnType<Date | null, never, Date | null>;
}

/** A one-time recovery code (argon2id hash), found by its lookup prefix. */
export interface SigninRecoveryCodeTable {
  user_id: string;
  lookup: string;
  code_hash: string;
  created_at: ColumnType<Date, never, never>;
  used_at: ColumnType<Date | null, never, Date | null>;
}

/** A user's passkey (WebAuthn credential; migration 20261205110100; src/signin/). */
export interface SigninPasskeyTable {
  id: Generated<string>;
  user_id: string;
  /** base64url credential id. */
  credential_id: string;
  public_key: Buffer;
  counter: ColumnType<string, string | number | undefined, string | number>;
  transports: ColumnType<string[], string[] | undefined, string[]>;
  /** `singleDevice` or `multiDevice` (WebAuthn backup eligibility). */
  device_type: string;
  backed_up: boolean;
  /** `platform` or `cross-platform`, when the browser said. */
  attachment: string | null;
  name: string;
  created_at: ColumnType<Date, never, never>;
  last_used_at: ColumnType<Date | null, never, Date | null>;
}

/** A second factor an administrator requires at the user's next sign-in (migration 20261205110200). */
export interface SigninEnrollmentRequiredTable {
  user_id: string;
  factor: 'otp' | 'passkey';
  requested_at: ColumnType<Date, never, never>;
}

/** A one-time enrollment link an administrator issued (migration 20261205170000): the token's SHA-256 only. */
export interface SigninEnrollmentLinkTable {
  token_hash: string;
  user_id: string;
  created_by: string;
  created_at: ColumnType<Date, never, never>;
  expires_at: ColumnType<Date, Date, never>;
  taken_at: ColumnType<Date | null, never, Date>;
  browser_hash: ColumnType<string | null, never, string>;
  completed_at: ColumnType<Date | null, never, Date>;
}

/** An SSF 1.0 stream of a receiver (migration 20261204180000; src/ssf/). */
export interface SsfStreamTable {
  stream_id: string;
  client_id: string;
  aud: string;
  events_requested: ColumnType<string[], string, string>;
  delivery_method: string;
  description: string | null;
  default_subjects: string;
  status: Generated<string>;
  status_reason: string | null;
  /** Position in the event outbox: (txid, id) of the last row taken. */
  after_txid: string;
  after_id: string;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
  /** Push delivery (RFC 8935): the receiver's endpoint and the Authorization header it asked for. */
  endpoint_url: string | null;
  authorization_header: string | null;
  /** Consecutive failed pushes, when the next attempt is due, the last failure. */
  push_failures: Generated<number>;
  next_attempt_at: Date | null;
  last_error: string | null;
  /** SSF 1.0 §8.1.4.2: the last receiver-requested verification. */
  last_verification_at: Date | null;
  /** SSF 1.0 §8.1.1 `inactivity_timeout`: the receiver's last eligible activity. */
  last_activity_at: DefaultedTimestamp;
  /** When the status last changed (the paused-time bound). */
  status_changed_at: DefaultedTimestamp;
}

/** A subject added to an SSF stream, with the user it resolves to. */
export interface SsfStreamSubjectTable {
  stream_id: string;
  subject_key: string;
  subject: Json;
  user_id: string | null;
}

/** A SET signed for an SSF stream, kept until the receiver acknowledges it (RFC 8936). */
export interface SsfPendingSetTable {
  stream_id: string;
  jti: string;
  seq: Generated<string>;
  set: string;
  created_at: DefaultedTimestamp;
  /** When the event's outbox row was written (null for verification and stream-updated SETs). */
  occurred_at: ColumnType<Date | null, Date | undefined, Date | null>;
}

/** A verified SET received from a trusted SSF transmitter (replay protection by `iss` + `jti`). */
export interface SsfReceivedSetTable {
  issuer: string;
  jti: string;
  transmitter: string;
  event_type: string;
  received_at: DefaultedTimestamp;
}

/** A registered client (migration 20261205120000; src/clients/). */
export interface ClientTable {
  client_id: string;
  /** RFC 7591 metadata (and Custos' own fields: resources, serves, first_party, ...), without secrets or certificate bindings. */
  metadata: Json;
  status: ColumnType<'active' | 'disabled', 'active' | 'disabled' | undefined, 'active' | 'disabled'>;
  managed_by: 'config' | 'api';
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

/** An argon2id hash of a client secret; `expires_at` ends it (the overlap of a rotation). */
export interface ClientSecretTable {
  id: Generated<string>;
  client_id: string;
  hash: string;
  created_at: DefaultedTimestamp;
  expires_at: Timestamp | null;
}

/** A certificate binding of an mTLS client (`tls_client_auth_*` subject, or a JWK set), retirable. */
export interface ClientCertificateTable {
  id: Generated<string>;
  client_id: string;
  binding: Json;
  created_at: DefaultedTimestamp;
  retired_at: Timestamp | null;
}

/** Per-client cut-off: every token issued to the client at or before it is refused. */
export interface ClientRevocationTable {
  client_id: string;
  revoked_before: Timestamp;
}

/** An initial access token for dynamic registration (RFC 7591 §3): its hash, uses left, end. */
export interface ClientInitialAccessTokenTable {
  id: Generated<string>;
  token_hash: string;
  uses_left: number;
  expires_at: Timestamp;
  created_by: string;
  created_at: DefaultedTimestamp;
}

/** The registration access token (RFC 7592 §1) of a dynamically registered client: its hash. */
export interface ClientRegistrationTokenTable {
  client_id: string;
  token_hash: string;
  created_at: DefaultedTimestamp;
}

/** The kysely schema of the Custos database. */
export interface Database {
  oidc_model: OidcModelTable;
  token_exchange: TokenExchangeTable;
  subject_revocation: SubjectRevocationTable;
  session_revocation: SessionRevocationTable;
  iam_user: IamUserTable;
  iam_role: IamRoleTable;
  iam_user_role: IamUserRoleTable;
  audit_log: AuditLogTable;
  event_outbox: EventOutboxTable;
  event_subject_version: EventSubjectVersionTable;
  event_relay_state: EventRelayStateTable;
  login_throttle: LoginThrottleTable;
  ssf_stream: SsfStreamTable;
  ssf_stream_subject: SsfStreamSubjectTable;
  ssf_pending_set: SsfPendingSetTable;
  ssf_received_set: SsfReceivedSetTable;
  signin_totp: SigninTotpTable;
  signin_recovery_code: SigninRecoveryCodeTable;
  signin_passkey: SigninPasskeyTable;
  signin_enrollment_required: SigninEnrollmentRequiredTable;
  signin_enrollment_link: SigninEnrollmentLinkTable;
  client: ClientTable;
  client_secret: ClientSecretTable;
  client_certificate: ClientCertificateTable;
  client_revocation: ClientRevocationTable;
  client_initial_access_token: ClientInitialAccessTokenTable;
  client_registration_token: ClientRegistrationTokenTable;
}

/** What repositories take first: the database, or the caller's transaction. */
export type DbExecutor = Kysely<Database> | Transaction<Database>;
