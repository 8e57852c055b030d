import { BlockList } from 'node:net';
import type { AddressRange } from '../config/address-list.js';

/** A set of networks built from validated {@link AddressRange}s. */
export function toBlockList(ranges: readonly AddressRange[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) list.addSubnet(range.address, range.prefix, range.type);
  return list;
}

/** Whether a socket's remote address (IPv4-mapped IPv6 normalised) is in `list`. */
export function addressAllowed(list: BlockList | undefined, remoteAddress: string | undefined): boolean {
  if (!list || !remoteAddress) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped?.[1]) return list.check(mapped[1], 'ipv4');
  return list.check(remoteAddress, remoteAddress.includes(':') ? 'ipv6' : 'ipv4');
}
