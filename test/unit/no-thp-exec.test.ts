/**
 * The build's hilbox-no-thp helper (qemu-device/no-thp-exec.c), compiled here from the same
 * source the QEMU build compiles: it disables transparent huge pages for the program it execs in
 * place, refuses a missing program with exit 127 naming it, and the launcher's command goes
 * through it only when it is beside QEMU.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_THP_HELPER, qemuCommand } from '../../orchestrator/src/vm/qemu-command.ts';

const dir = mkdtempSync(join(tmpdir(), 'hilbox-no-thp-'));
const helper = join(dir, NO_THP_HELPER);

describe('hilbox-no-thp', () => {
  beforeAll(() => {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', helper, join(import.meta.dirname, '../../qemu-device/no-thp-exec.c')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('execs the program in place with THP off (the flag survives execve)', () => {
    const r = spawnSync(helper, ['/bin/sh', '-c', 'echo $$; grep THP_enabled /proc/self/status || echo no-line'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const [, line] = r.stdout.trim().split('\n');
    if (line !== 'no-line') expect(line).toMatch(/^THP_enabled:\s*0$/);
  });

  it('the QEMU build compiles this source under the name the launcher looks for', () => {
    const script = readFileSync(join(import.meta.dirname, '../../scripts/build-qemu.mjs'), 'utf8');
    expect(script).toContain(`{ from: 'qemu-device/no-thp-exec.c', bin: '${NO_THP_HELPER}' }`);
  });

  it('keeps the pid: the program is the helper process', () => {
    const r = spawnSync(helper, ['/bin/sh', '-c', 'echo $$'], { encoding: 'utf8' });
    expect(Number(r.stdout.trim())).toBe(r.pid);
  });

  it('refuses a missing program (exit 127, naming it) and no arguments (exit 2)', () => {
    const missing = spawnSync(helper, ['/no/such/qemu'], { encoding: 'utf8' });
    expect(missing.status).toBe(127);
    expect(missing.stderr).toMatch(/\/no\/such\/qemu: No such file or directory/);
    const none = spawnSync(helper, [], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/usage: hilbox-no-thp PROGRAM/);
  });

  it('qemuCommand goes through the helper beside QEMU, and not when there is none or huge pages are asked for', () => {
    const qemu = join(dir, 'qemu-system-x86_64');
    writeFileSync(qemu, '#!/bin/sh\n');
    chmodSync(qemu, 0o755);
    expect(qemuCommand(qemu, ['-S'])).toEqual({ file: helper, args: [qemu, '-S'] });
    expect(qemuCommand(qemu, ['-S'], { hugePages: true })).toEqual({ file: qemu, args: ['-S'] });
    const elsewhere = mkdtempSync(join(tmpdir(), 'hilbox-plain-qemu-'));
    try {
      copyFileSync(qemu, join(elsewhere, 'qemu-system-x86_64'));
      expect(qemuCommand(join(elsewhere, 'qemu-system-x86_64'), ['-S'])).toEqual({ file: join(elsewhere, 'qemu-system-x86_64'), args: ['-S'] });
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
