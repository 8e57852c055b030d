import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION_MINUTES, DEFAULT_RETENTION_SIZE_MB, standaloneConf } from '../../../scripts/pulsar/pulsar-standalone.js';
import { brokerUnavailable, testBroker, uniqueTopic } from '../../helpers/pulsar.js';

describe('pulsar:standalone retention (issue 22 §10)', () => {
  it('writes a default retention into the standalone configuration: 7 days or 1 GiB per topic', () => {
    expect(DEFAULT_RETENTION_MINUTES).toBe(10_080);
    const conf = standaloneConf(6650, 8080).split('\n');
    expect(conf).toContain('defaultRetentionTimeInMinutes=10080');
    expect(conf).toContain(`defaultRetentionSizeInMB=${DEFAULT_RETENTION_SIZE_MB}`);
    expect(standaloneConf(6650, 8080, { minutes: 60, sizeMb: 10 }).split('\n')).toEqual(expect.arrayContaining(['defaultRetentionTimeInMinutes=60', 'defaultRetentionSizeInMB=10']));
  });

  it.skipIf(brokerUnavailable)('the running broker applies it to the events topic', async () => {
    const broker = await testBroker();
    const topic = uniqueTopic('retention').replace('persistent://', '');
    // Create the topic, then ask for the retention that applies to it (topic → namespace → broker default).
    const created = await fetch(`${broker.webUrl}/admin/v2/persistent/${topic}`, { method: 'PUT' });
    expect(created.status).toBeLessThan(300);
    const response = await fetch(`${broker.webUrl}/admin/v2/persistent/${topic}/retention?applied=true`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ retentionTimeInMinutes: DEFAULT_RETENTION_MINUTES, retentionSizeInMB: DEFAULT_RETENTION_SIZE_MB });
  }, 300_000);
});
