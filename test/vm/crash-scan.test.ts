import { describe, expect, it } from 'vitest';
import { CrashScanner, matchCrashLine, scanForCrashes } from '../../orchestrator/src/vm/crash-scan.ts';

const PANIC = `[    5.123456] sysrq: Trigger a crash
[    5.123789] Kernel panic - not syncing: sysrq triggered crash
[    5.124000] CPU: 0 PID: 120 Comm: sh Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    5.124100] Call Trace:
[    5.124200]  <TASK>
[    5.124300]  dump_stack_lvl+0x44/0x5c
`;

const OOPS = `[   12.000001] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   12.000002] #PF: supervisor read access in kernel mode
[   12.000003] Oops: 0000 [#1] PREEMPT SMP NOPTI
[   12.000004] RIP: 0010:hilbox_irq+0x1a/0x80 [hilbox]
[   12.000005] Call Trace:
`;

describe('crash signatures', () => {
  it('finds a panic and names it', () => {
    const hits = scanForCrashes(PANIC);
    expect(hits[0]?.signature).toBe('kernel-panic');
    expect(hits[0]?.fatal).toBe(true);
    // The Call Trace belongs to the panic splat, not a second crash.
    expect(hits).toHaveLength(1);
    expect(hits[0]?.lines.join('\n')).toContain('dump_stack_lvl');
  });

  it('classifies an oops as a NULL dereference first', () => {
    const hits = scanForCrashes(OOPS);
    expect(hits.map((h) => h.signature)).toEqual(['null-deref', 'oops']);
  });

  it.each([
    ['[  1.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP', 'gpf'],
    ['[  1.0] ==================================================================', undefined],
    ['[  1.0] BUG: KASAN: use-after-free in hilbox_read+0x10/0x20', 'kasan'],
    ['[  1.0] UBSAN: shift-out-of-bounds in drivers/misc/hilbox.c:42:7', 'ubsan'],
    ['[  1.0] kernel BUG at drivers/misc/hilbox.c:99!', 'kernel-bug'],
    ['[  1.0] WARNING: CPU: 0 PID: 1 at drivers/misc/hilbox.c:10 hilbox_probe+0x5/0x9', 'warning'],
    ['[  1.0] Call Trace:', 'call-trace'],
    ['[  1.0] BUG: soft lockup - CPU#0 stuck for 22s! [sh:99]', 'soft-lockup'],
    ['[  1.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'hung-task'],
    ['<4>[  1.0] BUG: sleeping function called from invalid context at mm/slab.h:723', 'sleeping-in-atomic'],
    ['hilbox-guest: sshd ready', undefined],
    ['[  0.5] ACPI: PM: Oopsie-free boot', undefined],
    ['[  0.5] usb 1-1: New USB device found', undefined],
    ['echo BUG: hilbox-ignore-crash', undefined],
  ])('%s → %s', (line, name) => {
    expect(matchCrashLine(line)?.name).toBe(name);
  });

  it('works on arbitrarily chunked input and CRLF', () => {
    const hits: string[] = [];
    const s = new CrashScanner((h) => hits.push(h.signature));
    const text = PANIC.replace(/\n/g, '\r\n');
    for (let i = 0; i < text.length; i += 7) s.push(text.slice(i, i + 7));
    s.flush();
    expect(hits).toEqual(['kernel-panic']);
    expect(s.first?.lines[0]).toContain('Kernel panic - not syncing: sysrq triggered crash');
    expect(s.first?.lines[0]).not.toContain('\r');
  });

  it('reports an unterminated last line on flush', () => {
    const s = new CrashScanner();
    s.push('[ 3.0] Kernel panic - not syncing: Attempted to kill init!');
    expect(s.hits).toHaveLength(0);
    s.flush();
    expect(s.first?.signature).toBe('kernel-panic');
  });
});
