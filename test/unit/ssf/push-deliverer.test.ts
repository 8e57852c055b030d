import { describe, expect, it } from 'vitest';
import { classifyPushAnswer } from '../../../src/ssf/push-deliverer.js';

describe('classifyPushAnswer (RFC 8935 §2.3 answers)', () => {
  it.each([
    [202, undefined, 'delivered'],
    [200, undefined, 'delivered'],
    [400, 'invalid_key', 'transient'],
    [408, undefined, 'transient'],
    [425, undefined, 'transient'],
    [429, undefined, 'transient'],
    [500, undefined, 'transient'],
    [503, undefined, 'transient'],
    [400, 'invalid_request', 'permanent'],
    [400, 'invalid_issuer', 'permanent'],
    [400, 'invalid_audience', 'permanent'],
    [400, undefined, 'permanent'],
    [401, 'authentication_failed', 'permanent'],
    [403, 'access_denied', 'permanent'],
    [404, undefined, 'permanent'],
    [301, undefined, 'permanent'],
  ] as const)('HTTP %i %s → %s', (status, err, kind) => {
    expect(classifyPushAnswer(status, err)).toBe(kind);
  });
});
