import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { hashSecret } from '../iam/secret-hash.js';

async function readSecretFromStdin(): Promise<string> {
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

/** `custos clients hash-secret`: argon2id hash for a client's `client_secret_hash`. */
export function registerClientsCommands(program: Command): void {
  const clients = program.command('clients').description('client registration helpers');
  clients
    .command('hash-secret')
    .description('read a client secret from stdin and print its argon2id hash for config/ (client_secret_hash)')
    .action(async () => {
      const secret = await readSecretFromStdin();
      if (secret.length < 16) throw new Error('client secrets need at least 16 characters');
      console.log(await hashSecret(secret));
    });
}
