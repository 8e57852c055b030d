import Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import { reuseClientsPerMetadata } from '../../../src/oidc/internals.js';

/** A provider whose `Client` metadata comes from a map, as the client registry hands it to the adapter. */
function providerOver(clients: Map<string, object>) {
  class MemoryAdapter {
    constructor(private readonly model: string) {}
    async find(id: string) {
      return this.model === 'Client' ? clients.get(id) : undefined;
    }
    async upsert() {}
    async findByUid() {
      return undefined;
    }
    async findByUserCode() {
      return undefined;
    }
    async destroy() {}
    async consume() {}
    async revokeByGrantId() {}
  }
  const provider = new Provider('https://issuer.test', { adapter: MemoryAdapter as never });
  reuseClientsPerMetadata(provider);
  return provider;
}

const metadata = (redirect: string) => ({
  client_id: 'app',
  client_secret: 'not-used-here',
  redirect_uris: [redirect],
  grant_types: ['authorization_code'],
  response_types: ['code'],
});

describe('reuseClientsPerMetadata', () => {
  it('builds a client once per metadata object, anew when the metadata changes, and none once it is gone', async () => {
    const clients = new Map<string, object>([['app', metadata('https://app.test/one')]]);
    const provider = providerOver(clients);
    const first = (await provider.Client.find('app'))!;
    expect(first.redirectUris).toEqual(['https://app.test/one']);
    expect(await provider.Client.find('app')).toBe(first);
    // Kept by the object, not rebuilt from its content (oidc-provider alone would hash the
    // content and build a new client here): so the registry never changes an object in place.
    (clients.get('app') as { redirect_uris: string[] }).redirect_uris = ['https://app.test/in-place'];
    expect(await provider.Client.find('app')).toBe(first);

    // The registry replaces the object on every change (a NOTIFY reload).
    clients.set('app', metadata('https://app.test/two'));
    const changed = (await provider.Client.find('app'))!;
    expect(changed).not.toBe(first);
    expect(changed.redirectUris).toEqual(['https://app.test/two']);
    expect(await provider.Client.find('app')).toBe(changed);

    clients.delete('app');
    expect(await provider.Client.find('app')).toBeUndefined();
    expect(await provider.Client.find('')).toBeUndefined();
  });
});
