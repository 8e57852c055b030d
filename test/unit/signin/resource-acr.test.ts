import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/config-error.js';
import { resourceServerSchema } from '../../../src/config/files.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { createResourcePolicy } from '../../../src/oidc/resource-servers.js';
import { requiredAcr, resourcesMinimumAcr } from '../../../src/signin/authentication-context.js';
import { assertResourceAcr } from '../../../src/signin/resource-acr.js';
import { ACR_MFA, ACR_PHR, ACR_PWD } from '../../../src/verify/acr.js';

const ORDERS = 'https://api.custos.test/orders';
const PAYROLL = 'https://api.custos.test/payroll';
const TREASURY = 'https://api.custos.test/treasury';

const policy = createResourcePolicy(
  [
    resourceServerSchema.parse({ identifier: ORDERS }),
    resourceServerSchema.parse({ identifier: PAYROLL, require_mfa: true }),
    resourceServerSchema.parse({ identifier: TREASURY, minimum_acr: ACR_PHR, require_mfa: true }),
  ],
  [],
  () => 'kid',
);

describe('minimum acr of resource servers', () => {
  it('is the minimum_acr, raised to mfa by require_mfa; none without either', () => {
    expect(policy.minimumAcr(ORDERS)).toBeUndefined();
    expect(policy.minimumAcr(PAYROLL)).toBe(ACR_MFA);
    expect(policy.minimumAcr(TREASURY)).toBe(ACR_PHR);
    expect(policy.minimumAcr('https://unknown.example')).toBeUndefined();
  });

  it('a request needs the strongest of its acr_values, the client and every resource it names', () => {
    expect(resourcesMinimumAcr(ORDERS, policy.minimumAcr)).toBeUndefined();
    expect(resourcesMinimumAcr([ORDERS, PAYROLL], policy.minimumAcr)).toBe(ACR_MFA);
    expect(resourcesMinimumAcr([TREASURY, PAYROLL], policy.minimumAcr)).toBe(ACR_PHR);
    expect(requiredAcr(ACR_PWD, {}, resourcesMinimumAcr(PAYROLL, policy.minimumAcr))).toBe(ACR_MFA);
    expect(requiredAcr(ACR_PHR, {}, ACR_MFA)).toBe(ACR_PHR);
    expect(requiredAcr(undefined, { minimum_acr: ACR_PHR }, ACR_MFA)).toBe(ACR_PHR);
    expect(requiredAcr(undefined, {}, undefined)).toBeUndefined();
  });

  it('refuses an acr below the minimum with invalid_target naming the acr to ask for', () => {
    expect(() => assertResourceAcr(PAYROLL, ACR_MFA, policy.minimumAcr)).not.toThrow();
    expect(() => assertResourceAcr(PAYROLL, ACR_PHR, policy.minimumAcr)).not.toThrow();
    expect(() => assertResourceAcr(ORDERS, undefined, policy.minimumAcr)).not.toThrow();
    const refusal = (resource: string, acr: unknown) => {
      try {
        assertResourceAcr(resource, acr, policy.minimumAcr);
      } catch (thrown) {
        return thrown as { error: string; error_description: string };
      }
      return undefined;
    };
    expect(refusal(PAYROLL, ACR_PWD)?.error).toBe('invalid_target');
    expect(refusal(PAYROLL, ACR_PWD)?.error_description).toContain(`acr_values=${ACR_MFA}`);
    expect(refusal(TREASURY, 'urn:other')?.error_description).toContain('at least urn:custos:acr:phr');
    expect(refusal(TREASURY, ACR_MFA)?.error).toBe('invalid_target');
  });
});

describe('resource server policy in config/resource-servers.json', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  async function configError(server: Record<string, unknown>): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'custos-rs-acr-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'resource-servers.json'), JSON.stringify({ resource_servers: [{ identifier: ORDERS }, { identifier: PAYROLL, ...server }] }));
    try {
      loadConfig({ CONFIG_DIR: dir }, path.resolve(import.meta.dirname, '../../..'));
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems.join('\n');
    }
    throw new Error('the configuration was accepted');
  }

  it('names the field of an unknown minimum_acr or a require_mfa that is not a boolean, one line each', async () => {
    const acr = await configError({ minimum_acr: 'urn:custos:acr:strong' });
    expect(acr.split('\n')).toHaveLength(1);
    expect(acr).toContain('resource-servers.json: resource_servers.1.minimum_acr');
    expect(await configError({ require_mfa: 'yes' })).toContain('resource-servers.json: resource_servers.1.require_mfa');
  });

  it('accepts the documented values', () => {
    expect(resourceServerSchema.parse({ identifier: PAYROLL, require_mfa: true, minimum_acr: ACR_PHR })).toMatchObject({ require_mfa: true, minimum_acr: ACR_PHR });
  });
});
