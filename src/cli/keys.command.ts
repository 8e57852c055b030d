import type { Command } from 'commander';
import { cookieKeysFile, initCookieKeys, rotateCookieKeys } from '../keys/cookie-keys.js';
import { loadSetSigningKeys, rotateSetSigningKeys } from '../keys/set-signing-keys.js';
import { initSigningKeys, loadSigningKeys, rotateSigningKeys } from '../keys/signing-keys.js';

/** `custos keys init|rotate|list|rotate-cookie-keys`: the staged ES256 signing keys and the cookie keys. */
export function registerKeysCommands(program: Command, deps: { keysDir: () => string }): void {
  const keys = program.command('keys').description('ES256 signing keys (next → current → previous) and cookie keys');
  keys
    .command('init')
    .description('create the current and next signing keys and the cookie keys (production needs them; nothing is replaced)')
    .action(async () => {
      const dir = deps.keysDir();
      const existing = await loadSigningKeys(dir, { generate: false }).catch(() => undefined);
      const cookies = await initCookieKeys(dir);
      // The RS256 keys of SSF SETs (CAEP Interoperability Profile §2.6): created when missing, never replaced.
      const setKeysBefore = await loadSetSigningKeys(dir, { generate: false }).catch(() => undefined);
      const setKeys = setKeysBefore ?? (await loadSetSigningKeys(dir, { generate: true }));
      if (!setKeysBefore) console.log(`created SSF SET keys current ${setKeys.current.kid} and next ${setKeys.next.kid} in ${dir}/ssf-signing`);
      if (existing && !cookies && setKeysBefore) throw new Error(`${dir} already holds signing and cookie keys; rotate them with \`custos keys rotate\` / \`custos keys rotate-cookie-keys\``);
      if (existing) console.log(`kept the signing keys in ${dir}/signing (current ${existing.current.kid})`);
      else {
        const set = await initSigningKeys(dir);
        console.log(`created current ${set.current.kid} and next ${set.next.kid} in ${dir}/signing`);
      }
      if (cookies) console.log(`created ${cookieKeysFile(dir)}`);
    });
  keys
    .command('rotate')
    .description('next becomes current, current becomes previous, a new next is created; restart or SIGHUP to apply')
    .action(async () => {
      const set = await rotateSigningKeys(deps.keysDir());
      const setKeys = await rotateSetSigningKeys(deps.keysDir());
      console.log(`SSF SET keys: current ${setKeys.current.kid}, next ${setKeys.next.kid}`);
      console.log(`current ${set.current.kid}\nnext ${set.next.kid}\nprevious ${set.previous?.kid}\nSend SIGHUP to running servers (or restart them) to sign with the new current key.`);
    });
  keys
    .command('rotate-cookie-keys')
    .description('prepend a new cookie signing key (the previous two keep verifying); restart to apply')
    .action(async () => {
      const rotated = await rotateCookieKeys(deps.keysDir());
      console.log(`${cookieKeysFile(deps.keysDir())}: ${rotated.length} keys, the new one signs after a restart of every instance`);
    });
  keys
    .command('list')
    .description('print the kid of each stage')
    .action(async () => {
      const set = await loadSigningKeys(deps.keysDir(), { generate: false });
      console.log(`current ${set.current.kid}\nnext ${set.next.kid}\nprevious ${set.previous?.kid ?? '-'}`);
    });
}
