import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { browserUnavailable, isCi } from '../../helpers/chromium.js';

const missing = path.join(import.meta.dirname, 'no-such-dir', 'chromium');

describe('what the page tests need (issue 22 #9)', () => {
  it('locally, a missing chromium skips its tests with the reason and the command that fixes it', () => {
    const reason = browserUnavailable(missing, {});
    expect(reason).toContain(`${missing} not found`);
    expect(reason).toContain('apt-get install -y chromium');
    expect(browserUnavailable(missing, { CI: 'false' })).toBe(reason);
  });

  it('under CI a missing chromium fails the run instead', () => {
    expect(() => browserUnavailable(missing, { CI: 'true' })).toThrow(/^CI=true but the browser tests cannot run: .* not found/);
    expect(() => browserUnavailable(missing, { CI: '1' })).toThrow(/browser tests cannot run/);
  });

  it('a browser that is there runs, CI or not', () => {
    expect(browserUnavailable(process.execPath, {})).toBeUndefined();
    expect(browserUnavailable(process.execPath, { CI: 'true' })).toBeUndefined();
  });

  it('reads CI as CI services set it', () => {
    expect([undefined, '', '0', 'false', 'FALSE'].map((CI) => isCi({ CI }))).toEqual([false, false, false, false, false]);
    expect(['true', '1', 'yes'].map((CI) => isCi({ CI }))).toEqual([true, true, true]);
  });
});
