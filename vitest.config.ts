import { defineConfig } from 'vitest/config';

// Tests boot real QEMU guests under TCG on 2 cores: run files one at a time, with generous
// timeouts (speed goals live in `hilbox bench`, not here).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
