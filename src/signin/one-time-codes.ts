import { randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

/** RFC 6238 parameters every authenticator app understands: SHA-1, 6 digits, 30 seconds. */
const TOTP_PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;

/** Codes of the step before and after the current one are accepted too (clock drift). */
const WINDOW = 1;

/** A new random TOTP secret (160 bits, RFC 4226 §4), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totp(secret: string, issuer: string, label: string): TOTP {
  return new TOTP({ ...TOTP_PARAMETERS, secret: Secret.fromBase32(secret), issuer, label });
}

/** The `otpauth://` URI an authenticator app reads from the QR code. */
export function totpUri(secret: string, issuer: string, username: string): string {
  return totp(secret, issuer, username).toString();
}

/**
 * The time step a code is valid for (within ±{@link WINDOW} steps of `now`), compared in
 * constant time by otpauth; undefined for a wrong or malformed code.
 */
export function totpStep(secret: string, code: string, now = Date.now()): number | undefined {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const generator = totp(secret, 'custos', 'user');
  const delta = generator.validate({ token, timestamp: now, window: WINDOW });
  return delta === null ? undefined : generator.counter({ timestamp: now }) + delta;
}

/** The QR code of `uri` as SVG markup (no script, no external reference). */
export function qrCodeSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** Unambiguous characters of recovery codes (no 0/O, 1/I). */
const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';

/** How many recovery codes an enrollment gives. */
export const RECOVERY_CODE_COUNT = 10;

/**
 * Fresh recovery codes, `XXXX-XXXX-XXXX-XXXX` (80 random bits): the first group is the lookup
 * prefix stored in clear, the whole code is stored only as an argon2id hash.
 */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) {
    const chars = Array.from({ length: 16 }, () => ALPHABET[randomInt(ALPHABET.length)]!).join('');
    if ([...codes].some((code) => code.startsWith(chars.slice(0, 4)))) continue;
    codes.add(chars.match(/.{4}/g)!.join('-'));
  }
  return [...codes];
}

/** A typed recovery code in canonical form (`lookup`, and `normalized` for the hash), or undefined. */
export function parseRecoveryCode(input: string): { lookup: string; normalized: string } | undefined {
  const normalized = input.toUpperCase().replace(/[\s-]+/g, '');
  if (normalized.length !== 16 || [...normalized].some((c) => !ALPHABET.includes(c))) return undefined;
  return { lookup: normalized.slice(0, 4), normalized };
}
