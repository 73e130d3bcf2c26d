/**
 * The Windows probe is cross-built on Linux (mingw-w64): a 64-bit console program that imports
 * only Windows user-mode system DLLs, so it runs on a stock Windows guest with nothing else.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { IMAGE_FILE_MACHINE_AMD64, parsePe, readImports } from './pe.ts';

const IMAGE_SUBSYSTEM_WINDOWS_CUI = 3;

describe('npm run build:windows-probe', () => {
  it('builds hilbox-probe.exe: AMD64 console program importing only system DLLs, cached', () => {
    const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
    const run = () => spawnSync(zx, [join(repoRoot, 'scripts', 'build-windows-probe.mjs')], { cwd: repoRoot, encoding: 'utf8' });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    const exe = first.stdout.trim().split('\n').at(-1)!;
    expect(exe).toMatch(/hilbox-probe\.exe$/);
    const img = parsePe(readFileSync(exe));
    expect(img.machine).toBe(IMAGE_FILE_MACHINE_AMD64);
    expect(img.subsystem).toBe(IMAGE_SUBSYSTEM_WINDOWS_CUI);
    const dlls = readImports(img).map((i) => i.dll.toLowerCase());
    expect(dlls).toContain('kernel32.dll');
    for (const d of dlls) expect(d, `unexpected import ${d}`).toMatch(/^(kernel32|advapi32|msvcrt|ntdll|user32|ws2_32|api-ms-win-[a-z0-9-]+)\.dll$/);
    const second = run();
    expect(second.stdout.trim().split('\n').at(-1)).toBe(exe);
    expect(second.stderr).toMatch(/up to date/);
  });
});
