import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * Custos runs with `--experimental-async-context-frame` (Node 22; the default from Node 24):
 * oidc-provider keeps each request in an AsyncLocalStorage, and without the flag Node tracks it
 * with promise hooks on every promise, which cost ~15% of the CPU per token (docs/performance.md).
 * Every way Custos is started carries the flag, and the tests run under it too.
 */
const FLAG = '--experimental-async-context-frame';
const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('the Node flags Custos runs with', () => {
  it('are set by npm start, npm run custos, the image, the bench and the tests', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain(`node ${FLAG} `);
    expect(scripts.custos).toContain(`node ${FLAG} `);
    expect(read('Containerfile')).toContain(`ENTRYPOINT ["node", "${FLAG}", "/app/bin/custos.js"]`);
    expect(read('bin/custos.js')).toContain(`'${FLAG}'`);
    expect(read('bench/run.ts')).toContain(`'${FLAG}'`);
    expect(read('vitest.config.ts')).toContain(`execArgv: ['${FLAG}']`);
  });

  it('are in effect in this test process', () => {
    expect(process.execArgv).toContain(FLAG);
  });
});
