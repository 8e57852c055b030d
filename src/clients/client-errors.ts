import { AppError } from '../http/app-error.js';

/** Stable error codes of the clients room (admin API bodies and CLI messages use them). */
export type ClientErrorCode =
  | 'client_not_found'
  | 'client_exists'
  | 'managed_by_config'
  | 'certificate_not_found'
  | 'initial_access_token_not_found'
  | 'last_certificate'
  | 'not_applicable'
  /** RFC 7591 §3.2.2 */
  | 'invalid_client_metadata'
  /** RFC 7591 §3.2.2 */
  | 'invalid_redirect_uri';

const STATUS: Record<ClientErrorCode, number> = {
  client_not_found: 404,
  certificate_not_found: 404,
  initial_access_token_not_found: 404,
  client_exists: 409,
  managed_by_config: 409,
  last_certificate: 409,
  not_applicable: 400,
  invalid_client_metadata: 400,
  invalid_redirect_uri: 400,
};

/** A domain error of client management. */
export class ClientError extends AppError {
  constructor(code: ClientErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }
}

/** The refusal of a change to a client the client file manages. */
export function managedByConfig(clientId: string, source: string): ClientError {
  return new ClientError('managed_by_config', `client ${clientId} is managed by the client file (${source}): edit the file and restart, or remove it there first`);
}
