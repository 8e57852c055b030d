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
  const program = new Command('custos').description('Custos zero-trust OAuth 2.0 / OpenID Connect authorization server');
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

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `custos: ${describeError(error)}`);
  process.exitCode = 1;
}
