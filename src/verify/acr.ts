/**
 * The authentication context classes (`acr`) Custos issues, weakest first. A stronger class
 * satisfies a requirement for a weaker one.
 *
 * - `urn:custos:acr:pwd`: a password.
 * - `urn:custos:acr:mfa`: two factors (a password and a one-time code, or a password and a passkey).
 * - `urn:custos:acr:phr`: phishing-resistant (a passkey with user verification).
 */
export const ACR_PWD = 'urn:custos:acr:pwd';
export const ACR_MFA = 'urn:custos:acr:mfa';
export const ACR_PHR = 'urn:custos:acr:phr';

/** Every `acr` value Custos issues, weakest first. */
export const ACR_VALUES = [ACR_PWD, ACR_MFA, ACR_PHR] as const;

export type Acr = (typeof ACR_VALUES)[number];

export function isAcr(value: unknown): value is Acr {
  return typeof value === 'string' && (ACR_VALUES as readonly string[]).includes(value);
}

/** Position of `value` in {@link ACR_VALUES}; -1 for anything else. */
export function acrRank(value: unknown): number {
  return isAcr(value) ? ACR_VALUES.indexOf(value) : -1;
}

/** Whether an authentication of class `actual` meets `required`. */
export function acrSatisfies(actual: unknown, required: Acr): boolean {
  return acrRank(actual) >= acrRank(required);
}

/** The stronger of two requirements (either may be absent). */
export function strongerAcr(a: Acr | undefined, b: Acr | undefined): Acr | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return acrRank(a) >= acrRank(b) ? a : b;
}
