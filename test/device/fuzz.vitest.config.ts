import { defineConfig } from 'vitest/config';

// `npm run fuzz`: only the seeded device fuzz, long (HILBOX_FUZZ_OPS per configuration), on
// the sanitizer QEMU that the test builds itself; no global set-up (no guest image needed).
export default defineConfig({
  test: {
    include: ['test/device/fuzz.test.ts'],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 3_600_000,
    reporters: ['default'],
  },
});
