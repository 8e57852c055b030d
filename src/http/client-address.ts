import { isIP, type BlockList } from 'node:net';
import { addressAllowed } from './address-allow.js';

/**
 * The client's address for rate limiting and audit records. Behind a proxy listed in
 * TRUST_PROXY, the right-most `X-Forwarded-For` entry (the one that proxy appended, so a client
 * cannot forge it); from any other peer, the connection's own address.
 */
export function clientAddressOf(proxies: BlockList | undefined) {
  return (ctx: { req: { socket: { remoteAddress?: string } }; get(name: string): string }): string | undefined => {
    const peer = ctx.req.socket.remoteAddress;
    if (!addressAllowed(proxies, peer)) return peer;
    const forwarded = ctx.get('x-forwarded-for').split(',').at(-1)?.trim();
    return forwarded && isIP(forwarded) ? forwarded : peer;
  };
}
