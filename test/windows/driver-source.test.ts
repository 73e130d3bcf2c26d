/**
 * hilbox.sys, checked against review findings that the PE/INF tests in windows-driver.test.ts
 * do not pin down: the INF's OS decoration, the BAR mapping routine the image imports, the
 * process-notify routine and the FORCE_INTEGRITY bit the comments describe, and (a
 * regression guard, not a proof) the interrupt teardown order in driver.c. The builds come
 * from scripts/build-windows.mjs (cached), as in windows-driver.test.ts. Nothing here runs
 * Windows.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DLLCHAR_FORCE_INTEGRITY, parsePe, readImports, type PeImage } from './pe.ts';
import { parseInf, type Inf } from './inf.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const srcDir = join(repo, 'guest-driver', 'windows');
const script = join(repo, 'scripts', 'build-windows.mjs');
const zxCli = join(repo, 'node_modules', 'zx', 'build', 'cli.js');

/** The source without comments (names in comments must not count as calls). */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/** Body (between the outer braces) of the C function definition `name` in comment-free source. */
function functionBody(src: string, name: string): string {
  const def = new RegExp(`^[A-Za-z_][\\w \\t*]*\\b${name}\\s*\\([^;{]*\\)\\s*\\{`, 'm').exec(src);
  if (!def) throw new Error(`no definition of ${name}`);
  const open = def.index + def[0].length - 1;
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === '{') depth++;
    else if (src[i] === '}' && --depth === 0) return src.slice(open + 1, i);
  }
  throw new Error(`unbalanced braces in ${name}`);
}

/** Offsets of the calls `fn(` in code. */
function calls(code: string, fn: string): number[] {
  return [...code.matchAll(new RegExp(`\\b${fn}\\s*\\(`, 'g'))].map((m) => m.index!);
}

describe('hilbox.inf OS decoration', () => {
  const inf: Inf = parseInf(readFileSync(join(srcDir, 'hilbox.inf'), 'utf8'));

  it('decorates [Manufacturer] NTamd64.10.0...16299 (DIRID 13 needs build 16299+)', () => {
    const lines = inf.lines('Manufacturer');
    expect(lines).toHaveLength(1);
    const [models, ...decorations] = lines[0]!.value.split(',').map((s) => s.trim());
    expect(models).toBe('Hilbox');
    // exactly this one: an undecorated or plain NTamd64.10.0 entry would also match
    // Windows 10 builds before 16299, where the INF's DIRID 13 is not supported
    expect(decorations).toEqual(['NTamd64.10.0...16299']);
    expect(inf.text).toMatch(/^DefaultDestDir\s*=\s*13\s*$/m);
  });

  it('has the models section with that decoration, and no other models section', () => {
    const modelLines = inf.lines('Hilbox.NTamd64.10.0...16299');
    const hwids = modelLines.flatMap((l) => l.value.split(',').slice(1).map((s) => s.trim()));
    expect(hwids).toContain('PCI\\VEN_1234&DEV_4842');
    const ddinstall = modelLines[0]!.value.split(',')[0]!.trim();
    expect(inf.lines(`${ddinstall}.NT`).map((l) => l.key)).toContain('CopyFiles');
    const models = [...inf.sections.keys()].filter((s) => s.startsWith('hilbox.nt'));
    expect(models).toEqual(['hilbox.ntamd64.10.0...16299']);
    expect(inf.values('Version').get('catalogfile')).toBe('hilbox.cat');
  });
});

describe('driver.c: interrupt teardown order (regression guard)', () => {
  // HbDisconnectInterrupt's comment states the invariant; this only guards against the
  // old order (disconnect before the DPC flush) coming back.
  const code = stripComments(readFileSync(join(srcDir, 'driver.c'), 'utf8'));
  const body = functionBody(code, 'HbDisconnectInterrupt');

  it('retires, flushes DPCs, then disconnects, then flushes again in HbDisconnectInterrupt', () => {
    const [retire] = calls(body, 'HbRetireInterrupts');
    const flushes = calls(body, 'KeFlushQueuedDpcs');
    const disconnects = calls(body, 'IoDisconnectInterruptEx');
    expect(disconnects).toHaveLength(1);
    expect(flushes).toHaveLength(2);
    expect(retire).toBeDefined();
    expect(retire!).toBeLessThan(flushes[0]!);
    expect(flushes[0]!).toBeLessThan(disconnects[0]!); // the guarded bug
    expect(disconnects[0]!).toBeLessThan(flushes[1]!);
    // the interrupt object pointer is dropped only after the disconnect
    expect(body.indexOf('IntObject = NULL')).toBeGreaterThan(disconnects[0]!);
  });

  it('disconnects nowhere else', () => {
    expect(calls(code, 'IoDisconnectInterruptEx')).toHaveLength(1);
    const events = stripComments(readFileSync(join(srcDir, 'events.c'), 'utf8'));
    expect(calls(events, 'IoDisconnectInterruptEx')).toHaveLength(0);
  });
});

describe('driver.c / watchdog.c: the watchdog and the veto (INTERFACE.md §5a, guest-driver/windows/README.md)', () => {
  const driver = stripComments(readFileSync(join(srcDir, 'driver.c'), 'utf8'));
  const watchdog = stripComments(readFileSync(join(srcDir, 'watchdog.c'), 'utf8'));

  it('stops the watchdog before HbReleaseHardware takes HwLock (its work item takes it and revokes views)', () => {
    const body = functionBody(driver, 'HbReleaseHardware');
    const [stop] = calls(body, 'HbWatchdogStop');
    const [lock] = calls(body, 'ExAcquireResourceExclusiveLite');
    expect(stop).toBeDefined();
    expect(stop!).toBeLessThan(lock!);
  });

  it('waits for a work item in progress after cancelling the timer and flushing its DPC', () => {
    const body = functionBody(watchdog, 'HbWatchdogStop');
    const order = ['KeCancelTimer', 'KeFlushQueuedDpcs', 'KeWaitForSingleObject'].map((f) => calls(body, f)[0]);
    expect(order.every((o) => o !== undefined)).toBe(true);
    expect([...order].sort((a, b) => a! - b!)).toEqual(order);
  });

  it('vetoes QUERY_REMOVE while a file is open, setting the state before reading the count (Dekker order with CREATE)', () => {
    const body = functionBody(driver, 'HbDispatchPnp');
    const qr = body.slice(body.indexOf('IRP_MN_QUERY_REMOVE_DEVICE'), body.indexOf('IRP_MN_CANCEL_REMOVE_DEVICE'));
    expect(qr.indexOf('HbRemovePending')).toBeGreaterThan(-1);
    expect(qr.indexOf('HbRemovePending')).toBeLessThan(qr.indexOf('OpenFiles'));
    expect(qr).toMatch(/STATUS_DEVICE_BUSY/);
    const create = functionBody(driver, 'HbDispatchCreate');
    expect(create.indexOf('InterlockedIncrement(&dev->OpenFiles)')).toBeLessThan(create.indexOf('HbState(dev) != HbStarted'));
  });
});

describe('event completions in hand-out order (events.c, a regression guard)', () => {
  const events = stripComments(readFileSync(join(srcDir, 'events.c'), 'utf8'));

  it('completes requests that got records only through HbCompleteInOrder', () => {
    // a request with records is completed with STATUS_SUCCESS nowhere else
    const inOrder = functionBody(events, 'HbCompleteInOrder');
    const successes = [...events.matchAll(/HbCompleteEventIrp\([^;]*STATUS_SUCCESS/g)];
    expect(successes).toHaveLength(1);
    expect(inOrder).toMatch(/HbCompleteEventIrp\([^;]*STATUS_SUCCESS/);
    // one thread at a time, head first, no driver lock held around IoCompleteRequest
    expect(inOrder).toMatch(/if \(Dev->Completing\)/);
    expect(inOrder).toMatch(/RemoveHeadList\(&Dev->CompleteList\)/);
    expect(inOrder.indexOf('KeReleaseSpinLock(&Dev->CompleteLock')).toBeLessThan(inOrder.indexOf('HbCompleteEventIrp'));
  });

  it('queues the DPC\'s filled requests while DeliverLock is held, and a request filled at once as pending behind them', () => {
    const dpc = functionBody(events, 'HbDpc');
    expect(dpc.indexOf('HbQueueCompletions')).toBeGreaterThan(dpc.indexOf('HbHandOverRing'));
    expect(dpc.indexOf('HbQueueCompletions')).toBeLessThan(dpc.indexOf('KeReleaseSpinLockFromDpcLevel(&dev->DeliverLock)'));
    expect(calls(dpc, 'HbCompleteInOrder')).toHaveLength(1);
    const dispatch = functionBody(events, 'HbDispatchReadEvents');
    const inline = dispatch.slice(dispatch.indexOf('HbFillIrp'), dispatch.indexOf('STATUS_PENDING'));
    expect(inline).toMatch(/IoMarkIrpPending\(Irp\)/);
    expect(inline.indexOf('InsertTailList(&Dev->CompleteList')).toBeLessThan(inline.indexOf('KeReleaseSpinLock(&Dev->DeliverLock'));
    expect(inline.indexOf('HbCompleteInOrder')).toBeGreaterThan(inline.indexOf('KeReleaseSpinLock(&Dev->DeliverLock'));
  });

  it('fills a request up to the last whole report when records stay behind', () => {
    expect(functionBody(events, 'HbFillIrp')).toMatch(/HILBOX_EVF_END_OF_REPORT/);
  });
});

describe('hilbox.sys imports (package from build-windows.mjs)', () => {
  let img: PeImage;

  beforeAll(() => {
    const r = spawnSync(process.execPath, [zxCli, script], { cwd: repo, encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`build-windows failed (${r.status}):\n${r.stderr}`);
    const pkg = r.stdout.trim().split('\n').at(-1) ?? '';
    img = parsePe(readFileSync(join(pkg, 'hilbox.sys')));
  }, 600_000);

  it('maps the BARs with MmMapIoSpaceEx from ntoskrnl.exe, not MmMapIoSpace', () => {
    const imports = readImports(img);
    const nt = imports.filter((i) => i.dll.toLowerCase() === 'ntoskrnl.exe');
    expect(nt).toHaveLength(1); // the Makefile's import library adds to, not beside, ntoskrnl's
    const fns = new Set(nt[0]!.functions);
    expect(fns.has('MmMapIoSpaceEx')).toBe(true);
    expect(fns.has('MmMapIoSpace')).toBe(false);
    expect(fns.has('MmUnmapIoSpace')).toBe(true);
    expect(fns.has('MmGetSystemRoutineAddress')).toBe(false); // no run-time lookup any more
    for (const other of imports.filter((i) => i !== nt[0])) expect(other.functions).not.toContain('MmMapIoSpaceEx');
  });

  it('uses the classic process-notify routine and has no FORCE_INTEGRITY, as driver.c says', () => {
    const fns = readImports(img).find((i) => i.dll.toLowerCase() === 'ntoskrnl.exe')!.functions;
    expect(fns).toContain('PsSetCreateProcessNotifyRoutine');
    expect(fns).not.toContain('PsSetCreateProcessNotifyRoutineEx');
    // PsSetCreateProcessNotifyRoutineEx would return STATUS_ACCESS_DENIED without this bit
    expect(img.dllCharacteristics & DLLCHAR_FORCE_INTEGRITY).toBe(0);
  });
});
