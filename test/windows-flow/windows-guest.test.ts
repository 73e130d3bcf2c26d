/**
 * The Windows guest path without a Windows image: overlay creation (the base stays untouched),
 * QEMU arguments, clear errors for missing configuration, crash-event wiring, and the runner's
 * promise that a Windows scenario without an image reports skips, never passes.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScenarioSchema, type Scenario } from '../../orchestrator/src/scenario/schema.ts';
import { UsageError, exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { matchCrashLine } from '../../orchestrator/src/vm/crash-scan.ts';
import type { Machine } from '../../orchestrator/src/vm/machine.ts';
import {
  WINDOWS_CRASH_SIGNATURES,
  WindowsGuest,
  createOverlay,
  probeCommand,
  publishedNameOf,
  varsTemplateFor,
  watchWindowsCrashes,
  winQuote,
} from '../../orchestrator/src/vm/windows-guest.ts';
import { runScenario } from '../../orchestrator/src/suites/run-scenario.ts';
import type { Output } from '../../orchestrator/src/cli/output.ts';

const qemu = process.env.HILBOX_QEMU!;
const qemuImg = join(dirname(qemu), 'qemu-img');
let dir: string;
let base: string;

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const silent: Output = { step() {}, progress() {}, done() {}, warn() {}, info() {}, close() {} };

function windowsScenario(guest: Record<string, unknown>): Scenario {
  return ScenarioSchema.parse({ name: 'win-test', guest: { os: 'windows', ssh: { user: 'hilbox', password: 'pw' }, ...guest } });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hilbox-wintest-'));
  base = join(dir, 'base.qcow2');
  execFileSync(qemuImg, ['create', '-q', '-f', 'qcow2', base, '64M']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WindowsGuest disk overlay', () => {
  it('boots a per-run overlay whose backing file is the untouched image', async () => {
    const before = { hash: sha(base), mtime: statSync(base).mtimeMs };
    const guest = WindowsGuest.fromScenario(windowsScenario({ image: base }), qemu);
    const runDir = mkdtempSync(join(dir, 'run-'));
    await guest.prepare(runDir);
    const overlay = join(runDir, 'windows-overlay.qcow2');
    const info = JSON.parse(execFileSync(qemuImg, ['info', '--output=json', overlay], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(info['format']).toBe('qcow2');
    expect(info['backing-filename']).toBe(base);
    expect(info['backing-filename-format']).toBe('qcow2');
    // Creating and opening the overlay leaves the base byte-for-byte as it was.
    execFileSync(qemuImg, ['check', '-q', overlay]);
    expect(sha(base)).toBe(before.hash);
    expect(statSync(base).mtimeMs).toBe(before.mtime);
    const args = guest.bootArgs();
    expect(args).toContain(`if=none,id=windisk,format=qcow2,file=${overlay}`);
    expect(args.join(' ')).not.toContain(`file=${base}`);
    expect(args).toContain('pvpanic');
    expect(args.some((a) => a.startsWith('if=pflash'))).toBe(false); // SeaBIOS by default
    expect(guest.nicModel).toBe('e1000e');
  });

  it('uses a private copy of the UEFI variable store with the non-secure code file', async () => {
    const code = join(dir, 'OVMF_CODE_4M.fd');
    writeFileSync(code, Buffer.alloc(4096));
    writeFileSync(join(dir, 'OVMF_VARS_4M.fd'), Buffer.alloc(4096, 1));
    expect(varsTemplateFor(code)).toBe(join(dir, 'OVMF_VARS_4M.fd'));
    const guest = WindowsGuest.fromScenario(windowsScenario({ image: base, firmware: code }), qemu);
    const runDir = mkdtempSync(join(dir, 'run-'));
    await guest.prepare(runDir);
    const args = guest.bootArgs();
    expect(args).toContain(`if=pflash,format=raw,unit=0,readonly=on,file=${code}`);
    expect(args).toContain(`if=pflash,format=raw,unit=1,file=${join(runDir, 'efivars.fd')}`);
  });

  it('refuses a Secure Boot firmware build', () => {
    const sec = join(dir, 'OVMF_CODE_4M.ms.fd');
    writeFileSync(sec, Buffer.alloc(16));
    expect(() => WindowsGuest.fromScenario(windowsScenario({ image: base, firmware: sec }), qemu)).toThrow(/Secure Boot/);
  });

  it('says which scenario field is wrong when the image is missing', () => {
    const missing = windowsScenario({ image: join(dir, 'nope.qcow2') });
    expect(() => WindowsGuest.fromScenario(missing, qemu)).toThrow(/guest\.image .*nope\.qcow2 does not exist/);
    const noImage = { ...missing, guest: { ...missing.guest, image: undefined } } as Scenario;
    let err: unknown;
    try {
      WindowsGuest.fromScenario(noImage, qemu);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/guest\.image is not set/);
    expect(exitCodeFor(err)).toBe(2);
  });

  it('reports a non-qcow2 image as a usage error', async () => {
    const raw = join(dir, 'raw.img');
    writeFileSync(raw, Buffer.alloc(1024 * 1024));
    await expect(createOverlay(qemuImg, raw, join(dir, 'o.qcow2'))).rejects.toBeInstanceOf(UsageError);
  });
});

describe('Windows command helpers', () => {
  it('quotes for cmd.exe and refuses metacharacters', () => {
    expect(winQuote('C:\\hilbox\\a b.inf')).toBe('"C:\\hilbox\\a b.inf"');
    expect(winQuote('plain')).toBe('plain');
    expect(() => winQuote('a&b')).toThrow(TypeError);
    expect(probeCommand(['security', '--case', 'bad-ioctls'])).toBe('C:\\hilbox\\hilbox-probe.exe security --case bad-ioctls');
  });

  it('finds the published name of a driver package in pnputil output', () => {
    const out = 'Microsoft PnP Utility\r\n\r\nPublished Name:     oem3.inf\r\nOriginal Name:      netkvm.inf\r\n\r\nPublished Name:     oem7.inf\r\nOriginal Name:      hilbox.inf\r\nProvider Name:      hilbox\r\n';
    expect(publishedNameOf(out, 'hilbox.inf')).toBe('oem7.inf');
    expect(publishedNameOf(out, 'other.inf')).toBeUndefined();
  });
});

describe('Windows crash detection', () => {
  function fakeMachine(): { machine: Machine; lines: string[]; qmp: EventEmitter } {
    const lines: string[] = [];
    const qmp = new EventEmitter();
    const machine = { qmp, console: { push: (t: string) => lines.push(...t.split('\n').filter(Boolean)) } } as unknown as Machine;
    return { machine, lines, qmp };
  }

  it('turns GUEST_PANICKED into a fatal bugcheck signature', () => {
    const { machine, lines, qmp } = fakeMachine();
    const guest = new WindowsGuest({ image: base, qemu, sshUser: 'u', sshPassword: 'p' });
    watchWindowsCrashes(machine, guest);
    qmp.emit('GUEST_PANICKED', { event: 'GUEST_PANICKED', data: { action: 'pause', info: { type: 'hyper-v', arg1: 0x50 } } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/bugcheck code 0x50/);
    expect(matchCrashLine(lines[0]!, WINDOWS_CRASH_SIGNATURES)?.name).toBe('bugcheck');
  });

  it('reports a reset as a crash unless hilbox rebooted on purpose; a power-off is not a crash', () => {
    const { machine, lines, qmp } = fakeMachine();
    const guest = new WindowsGuest({ image: base, qemu, sshUser: 'u', sshPassword: 'p' });
    watchWindowsCrashes(machine, guest);
    qmp.emit('SHUTDOWN', { event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' } });
    guest.expectingReboot = true;
    qmp.emit('RESET', { event: 'RESET', data: { guest: true, reason: 'guest-reset' } });
    expect(lines).toHaveLength(0);
    guest.expectingReboot = false;
    qmp.emit('SHUTDOWN', { event: 'SHUTDOWN', data: { guest: true, reason: 'guest-reset' } });
    expect(lines).toHaveLength(1);
    expect(matchCrashLine(lines[0]!, WINDOWS_CRASH_SIGNATURES)?.name).toBe('guest-reset');
  });

  it('recognises the EMS bugcheck text on the serial console', () => {
    expect(matchCrashLine('<INSTANCE CLASS="BLUESCREEN"><PROPERTY NAME="STOPCODE"', WINDOWS_CRASH_SIGNATURES)?.name).toBe('bugcheck');
  });
});

describe('a Windows scenario without an image', () => {
  it('reports every case as skip with the reason, never a pass', async () => {
    const s = windowsScenario({ image: base });
    const noImage = { ...s, guest: { ...s.guest, image: undefined } } as Scenario;
    const outDir = mkdtempSync(join(dir, 'out-'));
    const { results } = await runScenario({ scenario: noImage, outDir, out: silent });
    expect(results.cases.length).toBeGreaterThan(0);
    for (const c of results.cases) {
      expect(c.status).toBe('skip');
      expect(c.reason).toMatch(/guest\.image/);
    }
  });
});
