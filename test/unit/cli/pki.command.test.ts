import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerPkiCommands } from '../../../src/cli/pki.command.js';
import { createChainValidator } from '../../../src/pki/chain.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';

interface Run {
  out: string;
  err: string;
  exitCode: number;
}

describe('custos pki', () => {
  let keysDir: string;
  beforeEach(async () => {
    keysDir = await mkdtemp(join(tmpdir(), 'custos-pki-cli-'));
  });
  afterEach(async () => {
    await rm(keysDir, { recursive: true, force: true });
  });

  /** Runs `custos <args>` in-process; output settings must be set before the commands are registered. */
  async function custos(...args: string[]): Promise<Run> {
    const run: Run = { out: '', err: '', exitCode: 0 };
    const program = new Command('custos')
      .exitOverride()
      .configureOutput({ writeOut: (text) => void (run.out += text), writeErr: (text) => void (run.err += text) });
    registerPkiCommands(program, { keysDir });
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      run.exitCode = err.exitCode;
    }
    return run;
  }

  it('init creates a CA and refuses to overwrite it without --force', async () => {
    const first = await custos('pki', 'init', '--cn', 'Ops CA', '--days', '30');
    expect(first).toEqual({ out: `${join(keysDir, 'ca.pem')}\n`, err: '', exitCode: 0 });
    const caPem = await readFile(join(keysDir, 'ca.pem'), 'utf8');
    expect(new X509Certificate(caPem).subject).toBe('CN=Ops CA');
    expect((await stat(join(keysDir, 'ca.key.pem'))).mode & 0o777).toBe(0o600);

    const again = await custos('pki', 'init');
    expect(again.exitCode).toBe(1);
    expect(again.err).toBe(`custos: a CA already exists in ${keysDir} (use --force to replace it)\n`);
    expect(await readFile(join(keysDir, 'ca.pem'), 'utf8')).toBe(caPem);

    expect((await custos('pki', 'init', '--force')).exitCode).toBe(0);
    expect(await readFile(join(keysDir, 'ca.pem'), 'utf8')).not.toBe(caPem);
  });

  it('issue writes cert.pem / key.pem signed by the CA and prints the x5t#S256; thumbprint agrees', async () => {
    await custos('pki', 'init');
    const out = join(keysDir, 'clients', 'orders');
    const issued = await custos(
      'pki', 'issue', '--name', 'orders', '--dns', 'orders.test', 'orders.internal',
      '--uri', 'spiffe://custos.test/client/orders', '--days', '10', '--out', out,
    );
    expect(issued.err).toBe('');
    expect(issued.exitCode).toBe(0);

    const certPem = await readFile(join(out, 'cert.pem'), 'utf8');
    const cert = new X509Certificate(certPem);
    expect(issued.out).toBe(`${x5tS256(cert)}\n`);
    expect(cert.subjectAltName).toBe('DNS:orders.test, DNS:orders.internal, URI:spiffe://custos.test/client/orders');
    expect(createChainValidator(await readFile(join(keysDir, 'ca.pem'), 'utf8')).isTrusted(cert)).toBe(true);
    expect((await stat(join(out, 'key.pem'))).mode & 0o777).toBe(0o600);

    expect((await custos('pki', 'thumbprint', join(out, 'cert.pem'))).out).toBe(issued.out);

    const twice = await custos('pki', 'issue', '--name', 'orders', '--out', out);
    expect(twice.exitCode).toBe(1);
    expect(twice.err).toMatch(/already holds a certificate/);
  });

  it('issue --usage server and a custom --ca-dir', async () => {
    const caDir = join(keysDir, 'other-ca');
    await custos('pki', 'init', '--dir', caDir);
    const out = join(keysDir, 'server');
    const run = await custos('pki', 'issue', '--name', 'localhost', '--dns', 'localhost', '--ip', '127.0.0.1', '--usage', 'server', '--ca-dir', caDir, '--out', out);
    expect(run.exitCode).toBe(0);
    const cert = new X509Certificate(await readFile(join(out, 'cert.pem'), 'utf8'));
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(createChainValidator(await readFile(join(caDir, 'ca.pem'), 'utf8'), { purpose: 'server' }).isTrusted(cert)).toBe(true);
  });

  it('reports errors as one line and exit code 1', async () => {
    await custos('pki', 'init');
    const tooLong = await custos('pki', 'issue', '--name', 'x', '--days', '900', '--out', join(keysDir, 'x'));
    expect(tooLong).toMatchObject({ exitCode: 1, out: '' });
    expect(tooLong.err).toBe('custos: validityDays must be an integer between 1 and 825, got 900\n');

    const noCa = await custos('pki', 'issue', '--name', 'x', '--out', join(keysDir, 'y'), '--ca-dir', join(keysDir, 'nope'));
    expect(noCa.exitCode).toBe(1);
    expect(noCa.err).toMatch(/^custos: cannot read .*ca\.pem: no such file\n$/);

    const missing = await custos('pki', 'thumbprint', join(keysDir, 'missing.pem'));
    expect(missing.exitCode).toBe(1);
    expect(missing.err.trim().split('\n')).toHaveLength(1);

    const badDays = await custos('pki', 'init', '--days', 'soon');
    expect(badDays.exitCode).toBe(1);
    expect(badDays.err).toMatch(/--days.*expected a positive integer/);
  });
});
