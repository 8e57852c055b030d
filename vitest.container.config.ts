import { defineConfig } from 'vitest/config';

/** `npm run test:container`: builds the Containerfile with buildah and runs the image (root, Debian). */
export default defineConfig({
  test: {
    include: ['test/container/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 20 * 60_000,
    pool: 'forks',
  },
});
