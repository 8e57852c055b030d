#!/usr/bin/env node
// `custos` command. Custos needs Node 22: under an older system Node (npx runs the system one) it
// re-runs itself with the Node 22 the project pins as a dev dependency, forwarding signals and the
// exit code. In a source checkout it runs the TypeScript source through tsx, so the CLI a user
// runs is never older than the code they edited; only an install without src/ runs dist/.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const pinnedNode = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);

if (major < 22 && existsSync(pinnedNode)) {
  // With the Node flags Custos runs with (package.json `start`, the Containerfile).
  const child = spawn(pinnedNode, ['--experimental-async-context-frame', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 128 : 1);
  });
} else {
  const source = new URL('../src/cli/custos.ts', import.meta.url);
  if (existsSync(fileURLToPath(source))) {
    const { register } = await import('tsx/esm/api');
    register();
    await import(source.href);
  } else {
    await import(new URL('../dist/src/cli/custos.js', import.meta.url).href);
  }
}
