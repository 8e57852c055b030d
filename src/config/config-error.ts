import type { z } from 'zod';

/** Start-up configuration error: the message names each offending variable or field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** Formats zod issues as `where: what was expected`, never echoing the offending value. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], where: (path: PropertyKey[]) => string): string[] {
  return issues.map((issue) => `${where(issue.path)}: ${issue.message}`);
}
