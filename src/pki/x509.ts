/**
 * The one place that loads `@peculiar/x509`.
 *
 * `@peculiar/x509` resolves its algorithm providers through `tsyringe`, which
 * needs the `reflect-metadata` polyfill loaded *before* the library itself, and
 * it must be told which WebCrypto implementation to use. Import `x509` from
 * here, never from `@peculiar/x509` directly.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The only module-level side effect of the room (allowed by the conventions).
x509.cryptoProvider.set(webcrypto);

export { x509 };
