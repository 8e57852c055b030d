#!/usr/bin/env node
// `custos` command. In a source checkout it runs the TypeScript source through tsx, so the CLI a
// user runs is never older than the code they edited; only an install without src/ runs dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/custos.ts', import.meta.url);
if (existsSync(fileURLToPath(source))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli/custos.js', import.meta.url).href);
}
