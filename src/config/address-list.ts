import { isIP } from 'node:net';
import { z } from 'zod';

/** One allowed network: an address with its prefix length (a single address has the full length). */
export interface AddressRange {
  address: string;
  prefix: number;
  type: 'ipv4' | 'ipv6';
}

/**
 * A comma-separated list of IP addresses or CIDR ranges. A prefix must be an integer from 1 to
 * the address length: `/0` (everyone) and malformed prefixes are refused, so a typo can never
 * widen trust.
 */
export const addressListSchema = z.string().transform((value, ctx): AddressRange[] => {
  const ranges: AddressRange[] = [];
  for (const entry of value.split(',').map((item) => item.trim()).filter(Boolean)) {
    const match = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry);
    const family = match ? isIP(match[1]!) : 0;
    const max = family === 6 ? 128 : 32;
    const prefix = match?.[2] === undefined ? max : Number(match[2]);
    if (!match || family === 0 || prefix < 1 || prefix > max) {
      ctx.addIssue({ code: 'custom', message: `"${entry.slice(0, 64)}" is not an IP address or a CIDR range with a prefix from 1 to ${max}` });
      return z.NEVER;
    }
    ranges.push({ address: match[1]!, prefix, type: family === 6 ? 'ipv6' : 'ipv4' });
  }
  return ranges;
});
