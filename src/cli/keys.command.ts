import type { Command } from 'commander';
import { initSigningKeys, loadSigningKeys, rotateSigningKeys } from '../keys/signing-keys.js';

/** `custos keys init|rotate|list`: manage the staged ES256 signing keys. */
export function registerKeysCommands(program: Command, deps: { keysDir: () => string }): void {
  const keys = program.command('keys').description('ES256 signing keys (next → current → previous)');
  keys
    .command('init')
    .description('create the current and next signing keys')
    .action(async () => {
      const set = await initSigningKeys(deps.keysDir());
      console.log(`created current ${set.current.kid} and next ${set.next.kid} in ${deps.keysDir()}/signing`);
    });
  keys
    .command('rotate')
    .description('next becomes current, current becomes previous, a new next is created; restart or SIGHUP to apply')
    .action(async () => {
      const set = await rotateSigningKeys(deps.keysDir());
      console.log(`current ${set.current.kid}\nnext ${set.next.kid}\nprevious ${set.previous?.kid}\nSend SIGHUP to running servers (or restart them) to sign with the new current key.`);
    });
  keys
    .command('list')
    .description('print the kid of each stage')
    .action(async () => {
      const set = await loadSigningKeys(deps.keysDir(), { generate: false });
      console.log(`current ${set.current.kid}\nnext ${set.next.kid}\nprevious ${set.previous?.kid ?? '-'}`);
    });
}
