/**
 * PostgreSQL text and jsonb cannot hold U+0000. A key containing one (only ever client input,
 * e.g. a forged token) cannot match a stored row, so lookups answer "not found" instead of a
 * driver error; free text drops it with {@link withoutNul}.
 */
export function storable(value: string): boolean {
  return !value.includes('\u0000');
}

/** `value` without U+0000 (null stays null): for free text that must be stored whatever it holds. */
export function withoutNul(value: string | null | undefined): string | null {
  return value == null ? null : value.replaceAll('\u0000', '');
}
