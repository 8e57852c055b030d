import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../../src/config/load-config.js';

describe('AUDIT_RETENTION_DAYS', () => {
  it('defaults to a year and accepts whole days', () => {
    expect(loadEnv({}).AUDIT_RETENTION_DAYS).toBe(365);
    expect(loadEnv({ AUDIT_RETENTION_DAYS: '30' }).AUDIT_RETENTION_DAYS).toBe(30);
  });

  it('refuses zero, fractions and words with one line naming the variable', () => {
    for (const value of ['0', '1.5', 'forever', '-3']) {
      expect(() => loadEnv({ AUDIT_RETENTION_DAYS: value })).toThrow(/AUDIT_RETENTION_DAYS/);
    }
  });
});
