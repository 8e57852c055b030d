import { AppError } from '../http/app-error.js';

/** Stable error codes of the IAM room (admin API bodies and CLI messages use them). */
export type IamErrorCode =
  | 'user_not_found'
  | 'username_taken'
  | 'role_not_found'
  | 'role_exists'
  | 'invalid_username'
  | 'invalid_role'
  | 'weak_password';

const STATUS: Record<IamErrorCode, number> = {
  user_not_found: 404,
  role_not_found: 404,
  username_taken: 409,
  role_exists: 409,
  invalid_username: 400,
  invalid_role: 400,
  weak_password: 400,
};

/** A domain error of users and roles; the repositories map PostgreSQL errors to these. */
export class IamError extends AppError {
  constructor(code: IamErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }
}

/** PostgreSQL SQLSTATE of a driver error, if any. */
export function pgCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export const PG_UNIQUE_VIOLATION = '23505';
export const PG_FOREIGN_KEY_VIOLATION = '23503';
export const PG_CHECK_VIOLATION = '23514';
