import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/http/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), text: () => lines.join('') };
}

const SECRET = 'client-secret-value-Zx81';
const VERIFIER = 'code-verifier-value-Qp27';

describe('error logs carry no secrets (issue 10 #3)', () => {
  it('drops the request URL a TypeError carries and scrubs messages, stacks and causes', () => {
    const { logger, text } = capture();
    let urlError: unknown;
    try {
      new URL('/auth', `https://localhost:8443\tx/token?client_secret=${SECRET}&code_verifier=${VERIFIER}`);
    } catch (error) {
      urlError = error;
    }
    expect((urlError as { base?: string }).base).toContain(SECRET);
    logger.error({ err: urlError }, 'provider server_error');

    const driverError = Object.assign(new Error('duplicate key value violates unique constraint'), {
      code: '23505',
      detail: `Key (id)=(${SECRET}) already exists.`,
    });
    const wrapped = new Error(`request to https://localhost:8443/token?code_verifier=${VERIFIER} failed (code=${VERIFIER})`, { cause: driverError });
    logger.error({ err: wrapped }, 'unhandled error');
    logger.error({ err: undefined }, 'nothing');

    const logs = text();
    expect(logs).toContain('Invalid URL');
    expect(logs).toContain('23505');
    expect(logs).toContain('duplicate key value');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(VERIFIER);
  });
});
