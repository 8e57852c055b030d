import { decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { buildSecurityEventClaims, createSetSigner, SET_EVENT_TYPES } from '../../../src/events/security-event-token.js';
import { generateSigningKey, publicJwks } from '../../../src/keys/signing-keys.js';
import { createSecurityEventVerifier, VerifyError } from '../../../src/verify/index.js';
import { isCanonicalEs256Signature } from '../../../src/verify/es256-signature.js';
import { flipS, lowS, tamperSignature } from '../../helpers/jws.js';

const ISSUER = 'https://custos.test';
const occurredAt = new Date('2026-11-30T01:00:00.500Z');

describe('Security Event Tokens (RFC 8417, CAEP 1.0)', () => {
  it('builds CAEP claims for each IAM event kind, without sub or exp', () => {
    const base = { eventId: 'e-1', txid: '1234', occurredAt };
    const revoked = buildSecurityEventClaims(
      { ...base, event: { type: 'session-revoked', userId: 'u1', sessionIds: ['s1'], sid: 's1', initiatingEntity: 'admin', reasonAdmin: 'stolen laptop' } },
      { issuer: ISSUER, audience: 'urn:custos:iam-events', now: () => 1_796_000_000_000 },
    );
    // Every session of the user (the admin path): the user as subject, even for a single session.
    const all = buildSecurityEventClaims(
      { ...base, event: { type: 'session-revoked', userId: 'u1', sessionIds: ['s1'], initiatingEntity: 'admin' } },
      { issuer: ISSUER, audience: 'a' },
    );
    expect(all.sub_id).toEqual({ format: 'iss_sub', iss: ISSUER, sub: 'u1' });
    expect(revoked).toEqual({
      iss: ISSUER,
      iat: 1_796_000_000,
      jti: 'e-1',
      aud: 'urn:custos:iam-events',
      txn: '1234',
      sub_id: { format: 'complex', user: { format: 'iss_sub', iss: ISSUER, sub: 'u1' }, session: { format: 'opaque', id: 's1' } },
      events: {
        [SET_EVENT_TYPES['session-revoked']]: { event_timestamp: 1_796_000_400, initiating_entity: 'admin', reason_admin: { en: 'stolen laptop' } },
      },
    });
    expect(revoked).not.toHaveProperty('sub');
    expect(revoked).not.toHaveProperty('exp');
    const roles = buildSecurityEventClaims({ ...base, event: { type: 'roles-changed', userId: 'u1', roles: ['admin'], initiatingEntity: 'admin' } }, { issuer: ISSUER, audience: 'a' });
    expect(roles.sub_id).toEqual({ format: 'iss_sub', iss: ISSUER, sub: 'u1' });
    expect(roles.events[SET_EVENT_TYPES['roles-changed']]).toMatchObject({ claims: { roles: ['admin'] } });
    const credential = buildSecurityEventClaims(
      { ...base, event: { type: 'credential-changed', userId: 'u1', credentialType: 'x509', changeType: 'revoke', initiatingEntity: 'admin' } },
      { issuer: ISSUER, audience: 'a' },
    );
    expect(credential.events[SET_EVENT_TYPES['credential-changed']]).toMatchObject({ credential_type: 'x509', change_type: 'revoke' });
    const disabled = buildSecurityEventClaims({ ...base, event: { type: 'account-disabled', userId: 'u1', initiatingEntity: 'policy' } }, { issuer: ISSUER, audience: 'a' });
    expect(Object.keys(disabled.events)).toEqual(['urn:custos:secevent:event-type:account-disabled']);
  });

  it('signs with the current key as typ secevent+jwt; verifies against the JWKS; a tampered SET fails', async () => {
    const current = await generateSigningKey();
    const next = await generateSigningKey();
    const sign = createSetSigner(() => current);
    const set = await sign(
      buildSecurityEventClaims({ eventId: 'e-2', txid: '9', occurredAt, event: { type: 'account-enabled', userId: 'u2', initiatingEntity: 'admin' } }, { issuer: ISSUER, audience: 'consumer' }),
    );
    expect(decodeProtectedHeader(set)).toEqual({ alg: 'ES256', typ: 'secevent+jwt', kid: current.kid });
    const verifier = createSecurityEventVerifier({ issuer: ISSUER, audience: 'consumer', jwks: publicJwks({ current, next }) });
    await expect(verifier.verify(set)).resolves.toMatchObject({ id: 'e-2', subject: 'u2', kind: 'account-enabled', transaction: '9', eventTimestamp: 1_796_000_400 });

    const [header, payload, signature] = set.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.sub_id.sub = 'someone-else';
    const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    await expect(verifier.verify(tampered)).rejects.toMatchObject({ code: 'invalid_security_event' });
    await expect(verifier.verify(tamperSignature(set))).rejects.toBeInstanceOf(VerifyError);
    // The high-S twin of the signature (S → n − S) verifies with node:crypto but is refused.
    await expect(verifier.verify(flipS(set))).rejects.toMatchObject({ code: 'invalid_security_event' });
    await expect(createSecurityEventVerifier({ issuer: ISSUER, audience: 'other', jwks: publicJwks({ current, next }) }).verify(set)).rejects.toMatchObject({ code: 'wrong_audience' });
    await expect(createSecurityEventVerifier({ issuer: 'https://evil.test', audience: 'consumer', jwks: publicJwks({ current, next }) }).verify(set)).rejects.toMatchObject({ code: 'wrong_issuer' });
    const stranger = await generateSigningKey();
    await expect(createSetSigner(() => ({ ...stranger, kid: current.kid }))(claims).then((forged) => verifier.verify(forged))).rejects.toMatchObject({
      code: 'invalid_security_event',
    });
  });

  it('follows the current key across a rotation (one node:crypto key per signing key)', async () => {
    const current = await generateSigningKey();
    const next = await generateSigningKey();
    let active = current;
    const sign = createSetSigner(() => active);
    const claims = buildSecurityEventClaims({ eventId: 'e-3', txid: '10', occurredAt, event: { type: 'account-enabled', userId: 'u3', initiatingEntity: 'admin' } }, { issuer: ISSUER, audience: 'consumer' });
    const verifier = createSecurityEventVerifier({ issuer: ISSUER, audience: 'consumer', jwks: publicJwks({ current, next }) });
    const before = await sign(claims);
    active = next;
    const after = await sign(claims);
    expect([decodeProtectedHeader(before).kid, decodeProtectedHeader(after).kid]).toEqual([current.kid, next.kid]);
    await expect(verifier.verify(after)).resolves.toMatchObject({ id: 'e-3' });
  });

  it('signs in the low-S form only (node:crypto returns high S about half the time)', async () => {
    const current = await generateSigningKey();
    const sign = createSetSigner(() => current);
    const claims = buildSecurityEventClaims({ eventId: 'e-4', txid: '11', occurredAt, event: { type: 'account-enabled', userId: 'u4', initiatingEntity: 'admin' } }, { issuer: ISSUER, audience: 'consumer' });
    for (let i = 0; i < 32; i++) {
      const set = await sign(claims);
      expect(isCanonicalEs256Signature(Buffer.from(set.split('.')[2]!, 'base64url'))).toBe(true);
    }
  });

  it('refuses an access token presented as a SET (typ, sub, exp)', async () => {
    const current = await generateSigningKey();
    const next = await generateSigningKey();
    const { SignJWT, importJWK } = await import('jose');
    const key = await importJWK(current, 'ES256');
    const verifier = createSecurityEventVerifier({ issuer: ISSUER, audience: 'consumer', jwks: publicJwks({ current, next }) });
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: ISSUER, aud: 'consumer', iat: now, jti: 'j', sub_id: { format: 'iss_sub', iss: ISSUER, sub: 'u' }, events: { x: { event_timestamp: now } } };
    const at = lowS(await new SignJWT(base).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: current.kid }).sign(key));
    await expect(verifier.verify(at)).rejects.toMatchObject({ code: 'invalid_security_event' });
    const withSub = lowS(await new SignJWT({ ...base, sub: 'u', exp: now + 60 }).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: current.kid }).sign(key));
    await expect(verifier.verify(withSub)).rejects.toMatchObject({ code: 'invalid_security_event' });
    const twoEvents = lowS(
      await new SignJWT({ ...base, events: { a: { event_timestamp: now }, b: { event_timestamp: now } } })
        .setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: current.kid })
        .sign(key),
    );
    await expect(verifier.verify(twoEvents)).rejects.toMatchObject({ code: 'invalid_security_event' });
  });
});
