import { describe, expect, it } from 'vitest';
import { addressListSchema } from '../../../src/config/address-list.js';
import { toBlockList } from '../../../src/http/address-allow.js';
import { clientAddressOf } from '../../../src/http/client-address.js';

const ctx = (peer: string, forwarded = '') => ({ req: { socket: { remoteAddress: peer } }, get: (name: string) => (name === 'x-forwarded-for' ? forwarded : '') });

describe('client address for throttling and audit', () => {
  it('is the peer address without trusted proxies, whatever X-Forwarded-For says', () => {
    expect(clientAddressOf(undefined)(ctx('203.0.113.9', '198.51.100.1'))).toBe('203.0.113.9');
  });

  it('behind a trusted proxy, is the right-most X-Forwarded-For entry (the one the proxy appended)', () => {
    const addressOf = clientAddressOf(toBlockList(addressListSchema.parse('10.0.0.0/8')));
    expect(addressOf(ctx('::ffff:10.1.2.3', 'forged, 198.51.100.7'))).toBe('198.51.100.7');
    expect(addressOf(ctx('10.1.2.3', '2001:db8::1'))).toBe('2001:db8::1');
    expect(addressOf(ctx('10.1.2.3', 'not-an-ip'))).toBe('10.1.2.3');
    expect(addressOf(ctx('10.1.2.3'))).toBe('10.1.2.3');
    // Not from the proxy: the header is ignored.
    expect(addressOf(ctx('192.0.2.50', '198.51.100.7'))).toBe('192.0.2.50');
  });
});
