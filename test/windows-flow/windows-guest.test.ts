/**
 * The Windows guest without a Windows image, through the same path as Linux: the scenario's
 * guest section checked before anything starts, the overlay (the base image stays untouched),
 * the accelerator probe and the launcher (HilboxVm.start → Machine) booting the overlay with
 * hilbox-pci, and the SSH readiness strategy giving up with a BootError that says what it waited
 * for — which is as far as a machine without Windows can go.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScenarioSchema, type Scenario } from '../../orchestrator/src/scenario/schema.ts';
import { BootError, UsageError } from '../../orchestrator/src/core/errors.ts';
import { exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { silentOutput } from '../../orchestrator/src/core/output.ts';
import { matchCrashLine, QMP_PANIC_LINE, QMP_RESET_LINE } from '../../orchestrator/src/vm/crash-scan.ts';
import { WINDOWS_CRASH_SIGNATURES, WindowsGuest, createOverlay, publishedNameOf, varsTemplateFor, winQuote } from '../../orchestrator/src/guest/windows.ts';
import { guestForScenario } from '../../orchestrator/src/guest/for-scenario.ts';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import { runScenario } from '../../orchestrator/src/suites/run-scenario.ts';
import { buildQemuArgs } from '../../orchestrator/src/vm/qemu-args.ts';
import { bootScenario } from '../../orchestrator/src/session/boot.ts';

const qemu = process.env.HILBOX_QEMU!;
const qemuImg = join(dirname(qemu), 'qemu-img');
let dir: string;
let base: string;

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

function windowsScenario(guest: Record<string, unknown>, rest: Record<string, unknown> = {}): Scenario {
  return ScenarioSchema.parse({ name: 'win-test', guest: { os: 'windows', ssh: { user: 'hilbox', password: 'pw' }, ...guest }, ...rest });
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
    const guest = WindowsGuest.fromScenario(windowsScenario({ image: base }).guest);
    const runDir = mkdtempSync(join(dir, 'run-'));
    await guest.prepare(runDir, qemu);
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
    const guest = WindowsGuest.fromScenario(windowsScenario({ image: base, firmware: code }).guest);
    const runDir = mkdtempSync(join(dir, 'run-'));
    await guest.prepare(runDir, qemu);
    const args = guest.bootArgs();
    expect(args).toContain(`if=pflash,format=raw,unit=0,readonly=on,file=${code}`);
    expect(args).toContain(`if=pflash,format=raw,unit=1,file=${join(runDir, 'efivars.fd')}`);
  });

  it('refuses a Secure Boot firmware build', () => {
    const sec = join(dir, 'OVMF_CODE_4M.ms.fd');
    writeFileSync(sec, Buffer.alloc(16));
    expect(() => WindowsGuest.fromScenario(windowsScenario({ image: base, firmware: sec }).guest)).toThrow(/Secure Boot/);
  });

  it('reports a non-qcow2 image as a usage error', async () => {
    const raw = join(dir, 'raw.img');
    writeFileSync(raw, Buffer.alloc(1024 * 1024));
    await expect(createOverlay(qemuImg, raw, join(dir, 'o.qcow2'))).rejects.toBeInstanceOf(UsageError);
  });
});

describe('a Windows scenario whose image is missing', () => {
  it('is bad input (exit 2) naming guest.image, before anything is built or started', async () => {
    const s = windowsScenario({ image: join(dir, 'nope.qcow2') });
    const outDir = join(dir, 'never-written');
    const t0 = Date.now();
    const err = await runScenario({ scenario: s, outDir, out: silentOutput }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/guest\.image .*nope\.qcow2 does not exist/);
    expect(exitCodeFor(err)).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(() => statSync(outDir)).toThrow(); // no artifacts: nothing started
    const noImage = { ...s, guest: { ...s.guest, image: undefined } } as Scenario;
    await expect(guestForScenario(noImage.guest)).rejects.toThrow(/guest\.image is not set/);
  });
});

describe('the shared start path, up to where an image is needed', () => {
  it('boots the overlay with hilbox-pci through HilboxVm and the SSH readiness gives up with a BootError', async () => {
    const s = windowsScenario({ image: base }, { accelerator: 'auto', memory: '256M', cpus: 1, timeouts: { bootSeconds: 2 }, device: { width: 320, height: 240 } });
    const logDir = mkdtempSync(join(dir, 'boot-'));
    const warnings: string[] = [];
    const out = { ...silentOutput, warn: (m: string) => warnings.push(m) };
    const baseHash = sha(base);
    const t0 = Date.now();
    const err = await bootScenario(s, { out, logDir }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    const e = err as BootError;
    // The same accelerator probe as Linux (a hanging KVM is detected: tcg here) and the same launcher.
    expect(e.message).toMatch(/did not boot within \d+ ms \((tcg|kvm)\): still waiting for `cmd \/c ver` to answer over SSH/);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(exitCodeFor(err)).toBe(3);
    expect(warnings.join('\n')).toMatch(/memory 256M is little for a windows guest/);
    const qmpLog = readFileSync(join(logDir, 'qmp.log'), 'utf8');
    expect(qmpLog).toMatch(/"execute":"cont"/); // QMP spoke to this QEMU: it was launched and resumed
    expect(sha(base)).toBe(baseHash); // the run wrote only its overlay
  }, 120_000);
});

describe('Windows command helpers', () => {
  it('quotes for cmd.exe and refuses metacharacters', () => {
    expect(winQuote('C:\\hilbox\\a b.inf')).toBe('"C:\\hilbox\\a b.inf"');
    expect(winQuote('plain')).toBe('plain');
    expect(() => winQuote('a&b')).toThrow(TypeError);
    const g = WindowsGuest.fromScenario(windowsScenario({ image: base }).guest);
    expect(g.probeCommand(['security', '--case', 'bad-ioctls'])).toBe('C:\\hilbox\\hilbox-probe.exe security --case bad-ioctls');
  });

  it('forwards the host port to guest.ssh.port (default 22)', () => {
    const g = WindowsGuest.fromScenario(ScenarioSchema.parse({ name: 'p', guest: { os: 'windows', image: base, ssh: { user: 'u', password: 'p', port: 2222 } } }).guest);
    expect(g.sshGuestPort).toBe(2222);
    expect(WindowsGuest.fromScenario(windowsScenario({ image: base }).guest).sshGuestPort).toBe(22);
    const argv = buildQemuArgs({ firmwareDirs: [], accel: 'tcg', memory: '1G', cpus: 1, boot: [], qmpSocket: '/q', serialSocket: '/s', sshPort: 40000, guestSshPort: g.sshGuestPort, nicModel: 'e1000e', paused: true });
    expect(argv).toContain('user,id=net0,hostfwd=tcp:127.0.0.1:40000-:2222');
  });

  it('finds the published name of a driver package in pnputil output', () => {
    const out = 'Microsoft PnP Utility\r\n\r\nPublished Name:     oem3.inf\r\nOriginal Name:      netkvm.inf\r\n\r\nPublished Name:     oem7.inf\r\nOriginal Name:      hilbox.inf\r\nProvider Name:      hilbox\r\n';
    expect(publishedNameOf(out, 'hilbox.inf')).toBe('oem7.inf');
    expect(publishedNameOf(out, 'other.inf')).toBeUndefined();
  });

  it('matches the launcher’s QMP crash lines and the EMS bugcheck text', () => {
    expect(matchCrashLine(`${QMP_PANIC_LINE}: the guest reported a panic bugcheck code 0x50`, WINDOWS_CRASH_SIGNATURES)?.name).toBe('bugcheck');
    expect(matchCrashLine(`${QMP_RESET_LINE} (SHUTDOWN guest-reset): the guest restarted by itself`, WINDOWS_CRASH_SIGNATURES)?.name).toBe('guest-reset');
    expect(matchCrashLine('<INSTANCE CLASS="BLUESCREEN"><PROPERTY NAME="STOPCODE"', WINDOWS_CRASH_SIGNATURES)?.name).toBe('bugcheck');
  });
});

describe('HilboxVm with a WindowsGuest object (library use)', () => {
  it('takes any Guest', async () => {
    const guest = WindowsGuest.fromScenario(windowsScenario({ image: base }).guest);
    const err = await new HilboxVm({ warn: () => {} })
      .withQemu(qemu)
      .withGuest(guest)
      .withAccel('tcg')
      .withMemory('256M')
      .withBootTimeout(1000)
      .start()
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect((err as Error).message).toMatch(/cmd \/c ver/);
  }, 60_000);
});
