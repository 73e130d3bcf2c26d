/** The QEMU build is cached: an unchanged second build is a no-op that prints the same path. */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';

describe('npm run build:qemu', () => {
  it('is a no-op when nothing changed, and its last stdout line is the binary listing hilbox-pci', () => {
    const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
    const run = () => spawnSync(zx, [join(repoRoot, 'scripts', 'build-qemu.mjs')], { cwd: repoRoot, encoding: 'utf8' });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    const path = first.stdout.trim().split('\n').at(-1)!;
    expect(path).toMatch(/^\/.*\/qemu-system-x86_64$/);
    const second = run();
    expect(second.stderr).toMatch(/up to date/);
    expect(second.stderr).not.toMatch(/ninja|configuring|installing/);
    expect(second.stdout.trim().split('\n').at(-1)).toBe(path);
    const help = execFileSync(path, ['-L', '/usr/share/seabios', '-L', '/usr/share/qemu', '-device', 'help'], { encoding: 'utf8' });
    expect(help).toContain('name "hilbox-pci"');
  });
});
