import { Command } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { loadConfig, loadEnv, resolveKeysDir } from '../config/load-config.js';
import { registerAdminCommands } from './admin.command.js';
import { registerKeysCommands } from './keys.command.js';
import { registerPayloadHashCommand } from './payload-hash.command.js';
import { registerPkiCommands } from './pki.command.js';
import { registerClientsCommands } from './clients.command.js';
import { describeError } from './describe-error.js';
import { migrateCommand, serveCommand } from './serve.command.js';
import { registerUsersCommands } from './users.command.js';

/** The `custos` command line: serve, migrate, keys, pki, clients, users, roles, admin. */
export function buildProgram(): Command {
  const program = new Command('custos')
    .description('Custos zero-trust OAuth 2.0 / OpenID Connect authorization server')
    // One prefix for every failure, commander's own (unknown option, missing argument) included.
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'custos: ')) });
  const keysDir = () => resolveKeysDir(loadEnv(), process.cwd());
  program.command('serve', { isDefault: true }).description('run the server (default)').action(serveCommand);
  program.command('migrate').description('apply pending database migrations').action(migrateCommand);
  program.command('check-config').description('validate environment and config files, then exit').action(() => {
    const config = loadConfig();
    console.log(`configuration OK: ${config.files.clients.length} clients, ${config.files.resource_servers.length} resource servers`);
  });
  registerKeysCommands(program, { keysDir });
  registerPkiCommands(program, { keysDir: resolveKeysDir(safeEnv(), process.cwd()) });
  registerClientsCommands(program);
  registerUsersCommands(program);
  registerPayloadHashCommand(program);
  registerAdminCommands(program, {
    keysDir: () => resolveKeysDir(loadEnv(), process.cwd()),
    issuer: () => {
      const env = loadEnv();
      return env.ISSUER ?? `https://localhost:${env.PORT}`;
    },
  });
  return program;
}

function safeEnv() {
  try {
    return loadEnv();
  } catch {
    return loadEnv({});
  }
}

/**
 * `custos bogus` names the unknown command (commander would hand `bogus` to the default command,
 * serve, and say "too many arguments for 'serve'").
 */
function unknownCommand(program: Command, args: string[]): string | undefined {
  const first = args[0];
  if (first === undefined || first.startsWith('-')) return undefined;
  const names = program.commands.map((command) => command.name());
  if (names.includes(first) || program.commands.some((command) => command.aliases().includes(first)) || first === 'help') return undefined;
  return `unknown command '${first}' (commands: ${names.join(', ')}; custos --help describes them)`;
}

/** A configuration error: one line when there is one problem, else one line per problem. */
function describeConfigError(error: ConfigError): string {
  if (error.problems.length === 1) return `custos: invalid configuration: ${error.problems[0]}`;
  return `custos: invalid configuration:\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}`;
}

try {
  const program = buildProgram();
  const unknown = unknownCommand(program, process.argv.slice(2));
  if (unknown) throw new Error(unknown);
  await program.parseAsync(process.argv);
} catch (error) {
  console.error(error instanceof ConfigError ? describeConfigError(error) : `custos: ${describeError(error)}`);
  process.exitCode = 1;
}
