import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat } from '../../../src/http/logger.js';

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

describe('log format: readable on a terminal, JSON otherwise (issue 22 §10)', () => {
  it('pretty only without a destination, on a terminal, outside production', () => {
    expect(logFormat({ stdoutIsTTY: true, production: false })).toBe('pretty');
    expect(logFormat({ stdoutIsTTY: false, production: false })).toBe('json');
    expect(logFormat({ stdoutIsTTY: true, production: true })).toBe('json');
    expect(logFormat({ destination: process.stdout, stdoutIsTTY: true, production: false })).toBe('json');
  });

  it('loads the pretty-printer only for a terminal, and keeps JSON for a given destination', () => {
    const loads: string[] = [];
    const written: string[] = [];
    const fakePretty = (options: Record<string, unknown>) => {
      loads.push(JSON.stringify(options));
      return new Writable({
        write(chunk, _encoding, callback) {
          written.push(`pretty:${String(chunk)}`);
          callback();
        },
      });
    };
    const loadPretty = () => fakePretty;

    createLogger({ level: 'info', stdoutIsTTY: false, loadPretty });
    createLogger({ level: 'info', stdoutIsTTY: true, production: true, loadPretty });
    expect(loads).toEqual([]);

    const { text } = (() => {
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk, _encoding, callback) {
          lines.push(String(chunk));
          callback();
        },
      });
      createLogger({ level: 'info', destination, stdoutIsTTY: true, loadPretty }).info({ password: 'p4ss-W0rd-xyz' }, 'hello');
      return { text: () => lines.join('') };
    })();
    expect(loads).toEqual([]);
    expect(JSON.parse(text())).toMatchObject({ msg: 'hello', service: 'custos', password: '[redacted]' });

    createLogger({ level: 'info', stdoutIsTTY: true, loadPretty }).info({ password: 'p4ss-W0rd-xyz' }, 'to a terminal');
    expect(loads).toHaveLength(1);
    expect(JSON.parse(loads[0]!)).toMatchObject({ destination: 1, colorize: true });
    // The pretty-printer receives the redacted line.
    expect(written.join('')).toContain('to a terminal');
    expect(written.join('')).not.toContain('p4ss-W0rd-xyz');
  });

  it('falls back to JSON when the pretty-printer is not installed', () => {
    expect(() => createLogger({ level: 'info', stdoutIsTTY: true, loadPretty: () => undefined })).not.toThrow();
  });
});
