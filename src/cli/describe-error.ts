/**
 * One line for a CLI failure: the message and the chain of causes (`a: b: c`) down to the first
 * error meant for users, never a stack.
 * Values that are not errors (a library rejecting with `undefined`) still give a line.
 */
export function describeError(error: unknown): string {
  const file = describeFileError(error);
  if (file) return file;
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error || typeof current === 'object' ? String((current as { message?: unknown }).message ?? '') : String(current);
    const line = message.replace(/\s+/g, ' ').trim();
    if (line && !parts.some((part) => part.includes(line))) parts.push(line);
    // An exposed error (AppError and its domain errors) is worded for the user: its cause is internal.
    if ((current as { expose?: unknown }).expose === true) break;
    current = (current as { cause?: unknown }).cause;
  }
  return parts.join(': ') || 'failed for an unknown reason';
}

const FILE_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  EROFS: 'read-only file system',
};
const FILE_VERBS: Record<string, string> = { open: 'read', read: 'read', scandir: 'read', mkdir: 'create', write: 'write', unlink: 'remove', rmdir: 'remove' };

/**
 * A file-system error of Node's (`ENOENT: no such file or directory, open 'x'`) in the user's
 * words: `cannot read x: no such file`. Undefined for anything else.
 */
export function describeFileError(error: unknown): string | undefined {
  const e = error as { code?: unknown; path?: unknown; syscall?: unknown } | null;
  if (!e || typeof e.code !== 'string' || typeof e.path !== 'string' || !(e.code in FILE_REASONS)) return undefined;
  const verb = (typeof e.syscall === 'string' && FILE_VERBS[e.syscall]) || 'use';
  return `cannot ${verb} ${e.path}: ${FILE_REASONS[e.code]}`;
}
