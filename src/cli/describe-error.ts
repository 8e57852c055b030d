/**
 * One line for a CLI failure: the message and the chain of causes (`a: b: c`) down to the first
 * error meant for users, never a stack.
 * Values that are not errors (a library rejecting with `undefined`) still give a line.
 */
export function describeError(error: unknown): string {
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
