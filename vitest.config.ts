import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The image build runs on its own: `npm run test:container`.
    exclude: [...configDefaults.exclude, 'test/container/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The Node flags Custos runs with (package.json `start`, the Containerfile; see test/unit/node-flags.test.ts).
    execArgv: ['--experimental-async-context-frame'],
  },
});
