#!/usr/bin/env node
// Everything the tests need, built by the project's own cached scripts:
// QEMU with hilbox-pci (build-qemu.mjs) and the Linux guest image (build-guest.mjs).
// Each is a no-op when its inputs are unchanged.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const zx = join(root, 'node_modules', '.bin', 'zx');
for (const script of ['build-qemu.mjs', 'build-guest.mjs']) {
  const started = Date.now();
  process.stderr.write(`setup: ${script}\n`);
  const r = spawnSync(zx, [join(root, 'scripts', script)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`setup: ${script} failed (exit ${r.status})\n`);
    process.exit(1);
  }
  const last = r.stdout.trim().split('\n').pop();
  process.stderr.write(`setup: ${script} -> ${last} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
