import { X509Certificate } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createCertificateAuthority, MAX_CA_VALIDITY_DAYS } from '../pki/ca.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, writeFileAtomic } from '../pki/files.js';
import { issueCertificate, MAX_LEAF_VALIDITY_DAYS, type CertificateUsage } from '../pki/issue.js';
import { x5tS256 } from '../pki/thumbprint.js';
import { describeError } from './describe-error.js';

export interface PkiCommandDeps {
  /** Default directory of `ca.pem` / `ca.key.pem` for `pki init` and `pki issue`. */
  keysDir: string;
}

interface InitOptions {
  dir: string;
  cn: string;
  days: number;
  force?: boolean;
}

interface IssueOptions {
  name: string;
  dns?: string[];
  uri?: string[];
  ip?: string[];
  usage: CertificateUsage;
  days: number;
  out: string;
  caDir: string;
  force?: boolean;
}

/**
 * Registers `custos pki …`:
 *
 * - `pki init [--dir DIR] [--cn NAME] [--days N] [--force]`: creates a
 *   self-signed EC P-256 CA (`ca.pem`, `ca.key.pem`); refuses to replace one
 *   unless `--force`. Prints the path of `ca.pem`.
 * - `pki issue --name NAME [--dns D...] [--uri U...] [--ip IP...] [--usage client|server]
 *   [--days N] --out DIR [--ca-dir DIR] [--force]`: issues a certificate
 *   signed by that CA into `DIR/cert.pem`, `DIR/key.pem`. Prints its RFC 8705
 *   `x5t#S256` (what `cnf` binds tokens to).
 * - `pki thumbprint FILE`: prints the `x5t#S256` of a PEM or DER certificate.
 *
 * Errors print as one line on stderr and exit with code 1 (through
 * `command.error`, so `exitOverride()` turns them into exceptions).
 */
export function registerPkiCommands(program: Command, deps: PkiCommandDeps): Command {
  const pki = program.command('pki').description('internal CA and mTLS certificates (RFC 8705)');

  pki
    .command('init')
    .description('create a self-signed EC P-256 certificate authority (ca.pem, ca.key.pem)')
    .option('--dir <dir>', 'directory to write the CA to', deps.keysDir)
    .option('--cn <name>', 'CA common name', 'Custos CA')
    .option('--days <n>', `validity in days (1-${MAX_CA_VALIDITY_DAYS})`, parseDays, MAX_CA_VALIDITY_DAYS)
    .option('--force', 'replace an existing CA')
    .action((options: InitOptions, command: Command) =>
      run(command, async () => {
        const certPath = join(options.dir, 'ca.pem');
        const keyPath = join(options.dir, 'ca.key.pem');
        if (!options.force && ((await exists(certPath)) || (await exists(keyPath)))) {
          throw new Error(`a CA already exists in ${options.dir} (use --force to replace it)`);
        }
        const ca = await createCertificateAuthority({ commonName: options.cn, validityDays: options.days });
        await writeFileAtomic(keyPath, ca.privateKeyPem, PRIVATE_KEY_MODE);
        await writeFileAtomic(certPath, ca.certificatePem, CERTIFICATE_MODE);
        return certPath;
      }),
    );

  pki
    .command('issue')
    .description('issue an EC P-256 certificate signed by the CA (cert.pem, key.pem) and print its x5t#S256')
    .requiredOption('--name <name>', 'subject common name')
    .option('--dns <names...>', 'subjectAltName DNS names')
    .option('--uri <uris...>', 'subjectAltName URIs (e.g. spiffe://…)')
    .option('--ip <addresses...>', 'subjectAltName IP addresses')
    .addOption(new Option('--usage <usage>', 'extended key usage').choices(['client', 'server']).default('client'))
    .option('--days <n>', `validity in days (1-${MAX_LEAF_VALIDITY_DAYS})`, parseDays, 365)
    .requiredOption('--out <dir>', 'directory to write cert.pem and key.pem to')
    .option('--ca-dir <dir>', 'directory holding ca.pem and ca.key.pem', deps.keysDir)
    .option('--force', 'replace an existing cert.pem / key.pem')
    .action((options: IssueOptions, command: Command) =>
      run(command, async () => {
        const certPath = join(options.out, 'cert.pem');
        const keyPath = join(options.out, 'key.pem');
        if (!options.force && ((await exists(certPath)) || (await exists(keyPath)))) {
          throw new Error(`${options.out} already holds a certificate (use --force to replace it)`);
        }
        const ca = {
          certificatePem: await readFile(join(options.caDir, 'ca.pem'), 'utf8'),
          privateKeyPem: await readFile(join(options.caDir, 'ca.key.pem'), 'utf8'),
        };
        const issued = await issueCertificate(ca, {
          commonName: options.name,
          dns: options.dns,
          uri: options.uri,
          ips: options.ip,
          usage: options.usage,
          validityDays: options.days,
        });
        await writeFileAtomic(keyPath, issued.privateKeyPem, PRIVATE_KEY_MODE);
        await writeFileAtomic(certPath, issued.certificatePem, CERTIFICATE_MODE);
        return issued.x5tS256;
      }),
    );

  pki
    .command('thumbprint')
    .description('print the x5t#S256 (RFC 8705 §3.1) of a PEM or DER certificate')
    .argument('<file>', 'certificate file')
    .action((file: string, _options: unknown, command: Command) =>
      run(command, async () => x5tS256(new X509Certificate(await readFile(file)))),
    );

  return pki;
}

/** Runs an action: its result goes to stdout, an error becomes one line on stderr and exit code 1. */
async function run(command: Command, action: () => Promise<string>): Promise<void> {
  let result: string;
  try {
    result = await action();
  } catch (err) {
    command.error(`custos: ${describeError(err)}`, { exitCode: 1, code: 'custos.pki' });
  }
  const { writeOut = (text: string) => process.stdout.write(text) } = command.configureOutput();
  writeOut(`${result}\n`);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function parseDays(value: string): number {
  const days = Number(value);
  if (!Number.isInteger(days) || days < 1) throw new InvalidArgumentError('expected a positive integer');
  return days;
}
