import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../../src/config/load-config.js';

describe('event settings', () => {
  it('defaults: no sink chosen, audience and topic set', () => {
    const env = loadEnv({});
    expect(env.EVENTS_SINK).toBeUndefined();
    expect(env.EVENTS_AUDIENCE).toEqual(['urn:custos:iam-events']);
    expect(env.EVENTS_TOPIC).toBe('persistent://public/default/custos-iam-events');
    expect(env.PULSAR_PRODUCER_NAME).toBe('custos-relay');
  });

  it('names the missing or invalid field in one line', () => {
    expect(() => loadEnv({ EVENTS_SINK: 'pulsar-ws' })).toThrow(/PULSAR_WS_URL: required when EVENTS_SINK=pulsar-ws/);
    expect(() => loadEnv({ EVENTS_SINK: 'pulsar' })).toThrow(/PULSAR_SERVICE_URL: required when EVENTS_SINK=pulsar/);
    expect(() => loadEnv({ EVENTS_SINK: 'kafka' })).toThrow(/EVENTS_SINK/);
    expect(() => loadEnv({ EVENTS_TOPIC: 'my-topic' })).toThrow(/EVENTS_TOPIC: expected persistent:\/\/tenant\/namespace\/topic/);
    expect(() => loadEnv({ PULSAR_WS_URL: 'http://broker:8080' })).toThrow(/PULSAR_WS_URL/);
    expect(() => loadEnv({ PULSAR_WS_URL: 'wss://admin:hunter2@broker:8443' })).toThrow(/environment variable PULSAR_WS_URL: must not contain credentials \(use PULSAR_TOKEN\)/);
    expect(() => loadEnv({ PULSAR_WS_URL: 'wss://admin:hunter2@broker:8443' })).not.toThrow(/hunter2/);
    expect(() => loadEnv({ PULSAR_WS_URL: 'ws://token@broker:8080' })).toThrow(/PULSAR_WS_URL: must not contain credentials/);
    expect(() => loadEnv({ PULSAR_TOKEN: 'secret-token-value', EVENTS_SINK: 'pulsar-ws' })).not.toThrow(/secret-token-value/);
  });
});
