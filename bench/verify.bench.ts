/**
 * One-core floors of `npm run bench` (scenarios 4 and 6): raw `node:crypto` ES256 signatures/s,
 * raw ES256 verifies/s, and `custos/verify` certificate-bound token verification, one at a time
 * and 32 in flight. Standalone: `npx tsx bench/verify.bench.ts` (env BENCH_SECONDS, default 3);
 * with `--json` it prints the results as JSON (how `bench/run.ts` calls it). Not a vitest test.
 */
import 'reflect-metadata';
import { X509Certificate, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, webcrypto } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import * as x509 from '@peculiar/x509';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet } from 'jose';
import { certificateThumbprint, createAccessTokenVerifier } from '../src/verify/index.js';
import { lowSEs256Signature } from '../src/verify/es256-signature.js';

x509.cryptoProvider.set(webcrypto);

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const SLICES = 6;
const SLICE = SECONDS / SLICES;
const ISSUER = 'https://localhost:8443';
const AUDIENCE = 'https://orders.api.test';

export interface FloorResult {
  name: string;
  ops: number;
  seconds: number;
}

/** Runs `fn` synchronously in batches until `seconds` have passed. */
function measureSync(name: string, seconds: number, fn: () => void): FloorResult {
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let ops = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 256; i++) fn();
    ops += 256;
  }
  return { name, ops, seconds: (performance.now() - start) / 1000 };
}

/** Runs `concurrency` loops of awaited `fn` calls until `seconds` have passed. */
async function measureAsync(name: string, seconds: number, concurrency: number, fn: () => Promise<unknown>): Promise<FloorResult> {
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let ops = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await fn();
        ops += 1;
      }
    }),
  );
  return { name, ops, seconds: (performance.now() - start) / 1000 };
}

async function main(): Promise<void> {
  // Issuer key (ES256) and a local JWKS.
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
  const jwks = { keys: [publicJwk] };

  // A client certificate and a token bound to it (RFC 8705 cnf.x5t#S256).
  const certKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const generated = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=bench-client',
    keys: certKeys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  const certificate = new X509Certificate(generated.toString('pem'));
  const now = Math.floor(Date.now() / 1000);
  const signed = await new SignJWT({
    iss: ISSUER,
    sub: 'user-123',
    aud: AUDIENCE,
    iat: now,
    exp: now + 3600,
    jti: 'bench-jti',
    client_id: 'web-bff',
    scope: 'openid orders',
    cnf: { 'x5t#S256': certificateThumbprint(certificate) },
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'bench-1' })
    .sign(privateKey);
  // Low S, as Custos signs (custos/verify refuses the high-S form; WebCrypto returns either).
  const [signedHeader, signedPayload, signedSignature] = signed.split('.') as [string, string, string];
  const token = `${signedHeader}.${signedPayload}.${Buffer.from(lowSEs256Signature(Buffer.from(signedSignature, 'base64url'))).toString('base64url')}`;

  // (a) raw node:crypto over the prepared JWS signing input.
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const signingInput = Buffer.from(`${header}.${payload}`);
  const signatureBytes = Buffer.from(signature, 'base64url');
  const keyObject = createPublicKey({ key: publicJwk, format: 'jwk' });
  const rawVerify = () => {
    if (!cryptoVerify('sha256', signingInput, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signatureBytes)) {
      throw new Error('raw verify failed');
    }
  };

  const privateKeyObject = createPrivateKey({ key: { ...(await exportJWK(privateKey)) }, format: 'jwk' });
  const rawSign = () => {
    cryptoSign('sha256', signingInput, { key: privateKeyObject, dsaEncoding: 'ieee-p1363' });
  };

  const verifier = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks });
  const verifyBound = () => verifier.verify(token, { clientCertificate: certificate });
  const localSet = createLocalJWKSet(jwks);
  const joseOnly = () => jwtVerify(token, localSet, { algorithms: ['ES256'] });

  // Sanity + warm-up (JIT, jose's CryptoKey import cache).
  rawVerify();
  await verifyBound();
  measureSync('warm-up', 0.3, rawVerify);
  measureSync('warm-up', 0.3, rawSign);
  await measureAsync('warm-up', 0.3, 1, verifyBound);
  await measureAsync('warm-up', 0.3, 32, verifyBound);

  // The cases alternate in short slices, so a burst of other load on the machine hits them alike.
  const cases: Array<[string, () => FloorResult | Promise<FloorResult>]> = [
    ['(a) node:crypto ES256 verify (sync, raw)', () => measureSync('(a)', SLICE, rawVerify)],
    ['(b) verifier.verify(), bound token, sequential', () => measureAsync('(b)', SLICE, 1, verifyBound)],
    ['(c) verifier.verify(), bound token, 32 in flight', () => measureAsync('(c)', SLICE, 32, verifyBound)],
    ['(d) jose jwtVerify only, sequential (reference)', () => measureAsync('(d)', SLICE, 1, joseOnly)],
    ['(s) node:crypto ES256 sign (sync, raw)', () => measureSync('(s)', SLICE, rawSign)],
  ];
  const results: FloorResult[] = cases.map(([name]) => ({ name, ops: 0, seconds: 0 }));
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [index, [, run]] of cases.entries()) {
      const part = await run();
      results[index]!.ops += part.ops;
      results[index]!.seconds += part.seconds;
    }
  }

  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(results.map((result) => ({ ...result, perSecond: result.ops / result.seconds }))));
    return;
  }

  const raw = results[0]!.ops / results[0]!.seconds;
  const nameWidth = Math.max(...results.map((r) => r.name.length));
  console.log(
    `Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ` +
      `UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '4 (default)'}, ${SECONDS}s per case`,
  );
  console.log(`${'case'.padEnd(nameWidth)} | ${'ops/s'.padStart(9)} | ${'vs raw'.padStart(6)}`);
  console.log(`${'-'.repeat(nameWidth)}-|-${'-'.repeat(9)}-|-${'-'.repeat(6)}`);
  for (const result of results) {
    const perSecond = result.ops / result.seconds;
    console.log(
      `${result.name.padEnd(nameWidth)} | ${Math.round(perSecond).toString().padStart(9)} | ${(perSecond / raw).toFixed(2).padStart(6)}`,
    );
  }
}

await main();
