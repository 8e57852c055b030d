import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { eventPayloadHash } from '../verify/payload-hash.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `custos payload-hash [file]`: the `event_payload_hash` of a JSON event payload. */
export function registerPayloadHashCommand(program: Command): void {
  program
    .command('payload-hash [file]')
    .description('print the event_payload_hash (base64url SHA-256 of the RFC 8785 canonical JSON) of a JSON file or stdin')
    .action(async (file?: string) => {
      const text = file ? await readFile(file, 'utf8') : await readStdin();
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch (error) {
        throw new Error(`payload is not valid JSON: ${(error as Error).message}`);
      }
      console.log(eventPayloadHash(payload));
    });
}
