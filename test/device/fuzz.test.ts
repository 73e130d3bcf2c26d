/**
 * Bounded, seeded random traffic against the device (fixed seed per configuration), run under
 * the AddressSanitizer + UBSan build of QEMU (`scripts/build-qemu.mjs --sanitizers`, cached
 * separately): register, framebuffer and config-space accesses of every size, CONTROL.RESET,
 * clock steps (frames, generator catch-up), host-feed bytes (records, fragments, garbage,
 * reconnects), QMP input events with extreme deltas, and attempts to change properties at run
 * time (the device allows none: each must fail and change nothing). Three configurations:
 * direct mode, mmio mode with mmio-latency-ns, and a direct framebuffer large enough to be
 * redrawn in the background after a reset.
 *
 * `npm test` runs a short pass (HILBOX_FUZZ_OPS operations per configuration, default 40 000:
 * 120 000 in all, some 15 s); `npm run fuzz` the long one (400 000 per configuration) from the
 * same code.
 * HILBOX_FUZZ_QEMU names another binary; HILBOX_FUZZ_SANITIZERS=0 uses the plain build.
 *
 * Afterwards QEMU must be alive and answering, its stderr free of sanitizer reports, and the
 * invariants that survive arbitrary traffic must hold:
 *   - 4-byte aligned reads of constant registers return their values, undefined offsets 0,
 *     1-/2-byte and misaligned 4-byte reads 0 (SPEC §3 access rules);
 *   - BAR2 always reads as the current frame (writes never change it) and every BAR2 write
 *     access is counted in FB_WRITE_ATTEMPTS (reset by CONTROL.RESET);
 *   - unused BARs stay unimplemented; the BARs can be re-sized and re-mapped.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { qcmd } from '../../orchestrator/src/qtest/client.ts';
import { PCI_CFG, PCI_COMMAND } from '../../orchestrator/src/qtest/pci.ts';
import {
  BAR,
  CONTROL,
  DEFAULT_PROPS,
  FB_MODE,
  EV_HEAD_WORDS,
  ID_MAGIC,
  PCI_ID,
  REG,
  REG64,
  SPEC_VERSION,
  encodeFeedRecord,
  expectedCaps,
  expectedFbBytes,
  fbBarSize,
  fbBytes,
  effectiveStride,
  type DeviceProps,
  type RegName,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, DEV_QOM, qemuBinary, rawQmp, rng, startRig } from './helpers.ts';

const OPS = Number(process.env.HILBOX_FUZZ_OPS ?? 40_000);
const PER_BATCH = 100;
/** Sanitizer reports in QEMU's stderr. */
const REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: \w+Sanitizer/;

/** The sanitizer QEMU (built on first use, ~5 min cold on 2 cores), or what the environment names. */
async function fuzzQemu(): Promise<{ path: string; sanitized: boolean }> {
  if (process.env.HILBOX_FUZZ_QEMU) return { path: process.env.HILBOX_FUZZ_QEMU, sanitized: process.env.HILBOX_FUZZ_SANITIZERS !== '0' };
  if (process.env.HILBOX_FUZZ_SANITIZERS === '0') return { path: await qemuBinary(), sanitized: false };
  const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
  const child = spawn(zx, [join(repoRoot, 'scripts', 'build-qemu.mjs'), '--sanitizers'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const path = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !path.startsWith('/')) throw new Error(`build-qemu.mjs --sanitizers failed (exit ${code}):\n${err.slice(-4000)}`);
  return { path, sanitized: true };
}

let qemu: { path: string; sanitized: boolean };
let dir: string;
beforeAll(async () => {
  qemu = await fuzzQemu();
  dir = await mkdtemp(join(tmpdir(), 'hbfuzz-'));
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const SANITIZER_ENV = {
  ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};

/** Expected 4-byte aligned reads that no traffic can change. */
function constants(props: DeviceProps): Map<number, number> {
  return new Map<number, number>([
    [REG.ID, ID_MAGIC],
    [REG.VERSION, SPEC_VERSION],
    [REG.CAPS, expectedCaps(props)],
    [REG.WIDTH, props.width],
    [REG.HEIGHT, props.height],
    [REG.STRIDE, effectiveStride(props)],
    [REG.FORMAT, 1],
    [REG.FPS, props.fps],
    [REG.FB_BYTES, fbBytes(props)],
    [REG.FB_MODE, FB_MODE[props['fb-mode']]],
    [REG.MMIO_LATENCY_NS, props['mmio-latency-ns']],
    [REG.EV_FIFO_DEPTH, props['fifo-depth']],
    [REG.EV_RATE_HZ, props['mouse-rate-hz']],
    [REG.EV_BUNDLE, props['mouse-bundle']],
  ]);
}

/** Word offsets the spec defines (anything else reads 0). */
const DEFINED = new Set<number>();
for (const [name, off] of Object.entries(REG) as [RegName, number][]) {
  DEFINED.add(off);
  if (REG64.has(name)) DEFINED.add(off + 4);
}
for (let w = 0; w < EV_HEAD_WORDS; w++) DEFINED.add(REG.EV_HEAD + 4 * w);

type Check = (reply: string) => string | undefined;

interface FuzzConfig {
  name: string;
  seed: number;
  props: Partial<DeviceProps>;
}

const CONFIGS: FuzzConfig[] = [
  { name: 'direct 256×64, stride 800', seed: 0x4842_2024, props: { width: 256, height: 64, stride: 800, fps: 100, 'fifo-depth': 16, 'mouse-rate-hz': 8000, 'mouse-bundle': 4 } },
  { name: 'mmio 256×64, stride 800, mmio-latency-ns 50000', seed: 0x4842_2025, props: { width: 256, height: 64, stride: 800, fps: 100, 'fifo-depth': 16, 'fb-mode': 'mmio', 'mmio-latency-ns': 50_000, 'mouse-rate-hz': 1000 } },
  { name: 'direct 1920×1080 (redrawn in the background after a reset)', seed: 0x4842_2026, props: { fps: 60, 'fifo-depth': 64, 'mouse-rate-hz': 125, 'mouse-bundle': 64 } },
];

/** Properties a test might try to change at run time; the device allows none after realize. */
const RUNTIME_PROPS: Array<[string, unknown]> = [['width', 640], ['fps', 1], ['fifo-depth', 1], ['fb-mode', 'mmio'], ['mmio-latency-ns', 5], ['mouse-rate-hz', 8000], ['input', false], ['msi', false]];

describe.each(CONFIGS)('seeded fuzz: $name', (cfg) => {
  it(`survives ${OPS} random operations (seed 0x${cfg.seed.toString(16)}) with invariants intact and no sanitizer report`, { timeout: 120_000 + OPS * 20 }, async () => {
    const feedPath = join(dir, `feed-${cfg.seed.toString(16)}.sock`);
    const props: DeviceProps = { ...DEFAULT_PROPS, ...cfg.props, chardev: 'feed' };
    const geo = { width: props.width, height: props.height, stride: effectiveStride(props) };
    const CONSTANT = constants(props);
    await using rig = await startRig({
      qemu: qemu.path,
      props: { ...cfg.props, chardev: 'feed' },
      args: ['-m', '64', '-chardev', `socket,id=feed,path=${feedPath},server=on,wait=off`, '-chardev', `socket,id=rawqmp,path=${feedPath}.qmp,server=on,wait=off`, '-mon', 'chardev=rawqmp,mode=control'],
      start: { env: { ...process.env, ...SANITIZER_ENV }, timeoutMs: 60_000, startTimeoutMs: 60_000 },
    });
    const { qt, pci, regs, fb } = rig;
    const qmp = qt.qmp!;
    const fbSize = fbBarSize(geo);
    const r = rng(cfg.seed);
    const int = (n: number): number => Math.floor(r() * n);
    const rand32 = (): number => (int(0x10000) * 0x10000 + int(0x10000)) >>> 0;
    const sizes = [1, 2, 4, 8] as const;
    let fbWrites = 0n; // model of FB_WRITE_ATTEMPTS
    const violations: string[] = [];
    const note = (s: string): void => {
      if (violations.length < 20) violations.push(s);
    };
    const stats = { bar0r: 0, bar0w: 0, bar2r: 0, bar2w: 0, cfgr: 0, cfgw: 0, reset: 0, steps: 0, feed: 0, reconnect: 0, input: 0, propset: 0 };
    const connectFeed = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect(feedPath, () => resolve(s));
        s.once('error', reject);
      });
    const raw = await rawQmp(`${feedPath}.qmp`); // exact int64 deltas
    let feed = await connectFeed();
    feed.on('error', () => undefined);
    const feedBytes = (): Buffer => {
      const k = r();
      const rec = Buffer.from(encodeFeedRecord({ dx: int(65536) - 32768, dy: int(65536) - 32768, wheel: int(256) - 128, buttons: int(256), flags: int(256) }));
      if (k < 0.5) return rec; // a whole record (any flags / buttons bytes)
      if (k < 0.75) return rec.subarray(0, 1 + int(15)); // a fragment
      if (k < 0.9) return Buffer.from(Array.from({ length: 1 + int(40) }, () => int(256))); // garbage
      return Buffer.concat([Buffer.from('HBE', 'latin1'), rec, rec.subarray(int(16))]); // near-magic, record, tail
    };
    const hugeDelta = (): string => ['9223372036854775807', '-9223372036854775808', '4294967297', '-4294967297', '32768', '-32769', String(int(200) - 100)][int(7)]!;

    try {
      for (let done = 0; done < OPS; ) {
        const k = r();
        // each step waits for the frame of the new clock to be rendered (SPEC §4.1: in direct
        // mode the device's render thread publishes it when complete), so BAR2 reads in the
        // batch are checked against one frame
        if (k < 0.45) {
          await rig.clockStep(int(3_000_000));
          stats.steps++;
        } else if (k < 0.47) {
          await rig.clockStep(int(2_000_000_000)); // a late timer: frames skipped, generator catch-up
          stats.steps++;
        }
        let frame = await rig.rd64('FRAME_NUMBER');
        const lines: string[] = [];
        const checks: Array<Check | undefined> = [];
        const push = (line: string, check?: Check): void => {
          lines.push(line);
          checks.push(check);
        };
        const side: Array<() => Promise<void>> = [];
        for (let i = 0; i < PER_BATCH && done < OPS; i++, done++) {
          const p = r();
          if (p < 0.3) {
            // BAR0 read
            const size = sizes[int(4)]!;
            const off = int(BAR.regsSize - size + 1);
            stats.bar0r++;
            push(qcmd.read(size, regs + off), (reply) => {
              const v = BigInt(reply);
              const where = `BAR0+0x${off.toString(16)}/${size}`;
              if (size === 1 || size === 2 || (size === 4 && off % 4 !== 0)) return v === 0n ? undefined : `${where} read 0x${v.toString(16)}, want 0`;
              if (size === 4 && CONSTANT.has(off)) return v === BigInt(CONSTANT.get(off)!) ? undefined : `${where} read 0x${v.toString(16)}, want 0x${CONSTANT.get(off)!.toString(16)}`;
              if (size === 4 && !DEFINED.has(off)) return v === 0n ? undefined : `${where} (undefined) read 0x${v.toString(16)}`;
              return undefined;
            });
          } else if (p < 0.45) {
            // BAR0 write; never sets CONTROL.RESET by accident (bit 31 of byte 0x00F)
            const size = sizes[int(4)]!;
            const off = r() < 0.3 ? [REG.CONTROL, REG.EV_POP, REG.INT_ACK, REG.INT_MASK][int(4)]! : int(BAR.regsSize - size + 1);
            let v = size === 8 ? (BigInt(rand32()) << 32n) | BigInt(rand32()) : BigInt(rand32()) & ((1n << BigInt(8 * size)) - 1n);
            if (off <= 0x00f && off + size > 0x00f) v &= ~(1n << BigInt((0x00f - off) * 8 + 7));
            stats.bar0w++;
            push(qcmd.write(size, regs + off, v));
          } else if (p < 0.62) {
            // BAR2 read, naturally aligned, checked against the current frame
            const size = sizes[int(4)]!;
            const off = int(fbSize / size) * size;
            const f = frame;
            stats.bar2r++;
            push(qcmd.read(size, fb + off), (reply) => {
              const want = Buffer.from(expectedFbBytes(f, geo, off, 8)).readBigUInt64LE(0) & ((1n << BigInt(8 * size)) - 1n);
              return BigInt(reply) === want ? undefined : `BAR2+0x${off.toString(16)}/${size} frame ${f}: got 0x${BigInt(reply).toString(16)}, want 0x${want.toString(16)}`;
            });
          } else if (p < 0.7) {
            // BAR2 write, naturally aligned: ignored, counted once
            const size = sizes[int(4)]!;
            const off = int(fbSize / size) * size;
            stats.bar2w++;
            fbWrites++;
            push(qcmd.write(size, fb + off, BigInt(rand32())));
          } else if (p < 0.78) {
            // config read anywhere in the legacy 256 bytes
            const off = int(256);
            const size = ([1, 2, 4] as const)[int(3)]!;
            const aligned = off & ~(size - 1);
            stats.cfgr++;
            const sel = (0x8000_0000 | (pci.addr.slot << 11) | (pci.addr.fn << 8) | (aligned & 0xfc)) >>> 0;
            push(qcmd.out(4, 0xcf8, sel));
            push(qcmd.in(size, 0xcfc + (aligned & 3)));
          } else if (p < 0.81) {
            // config write to registers that cannot unmap the device
            const choices: Array<[number, 1 | 2 | 4]> = [[0x00, 4], [0x08, 4], [0x0c, 1], [0x0d, 1], [0x0f, 1], [0x06, 2], [0x2c, 4], [0x3c, 1], [0x3d, 1], [0x3e, 2], [0x14, 4], [0x1c, 4], [0x20, 4], [0x24, 4]];
            const [off, size] = choices[int(choices.length)]!;
            const sel = (0x8000_0000 | (pci.addr.slot << 11) | (pci.addr.fn << 8) | (off & 0xfc)) >>> 0;
            stats.cfgw++;
            push(qcmd.out(4, 0xcf8, sel));
            push(qcmd.out(size, 0xcfc + (off & 3), size === 4 ? rand32() : rand32() & (size === 2 ? 0xffff : 0xff)));
          } else if (p < 0.82) {
            stats.reset++;
            push(qcmd.write(4, regs + REG.CONTROL, CONTROL.RESET));
            fbWrites = 0n;
            frame = 0n;
          } else if (p < 0.93) {
            // host-feed bytes; QEMU reads them while it runs the batch
            stats.feed++;
            const bytes = feedBytes();
            feed.write(bytes);
          } else if (p < 0.935) {
            stats.reconnect++;
            side.push(async () => {
              feed.destroy();
              await new Promise((res) => setTimeout(res, 5));
              feed = await connectFeed();
              feed.on('error', () => undefined);
            });
          } else if (p < 0.995) {
            stats.input++;
            const axis = r() < 0.5 ? 'x' : 'y';
            const rels = Array.from({ length: 1 + int(3) }, () => `{"type":"rel","data":{"axis":"${axis}","value":${hugeDelta()}}}`);
            const btn = `{"type":"btn","data":{"button":"${['left', 'right', 'middle', 'side', 'extra', 'wheel-up', 'wheel-down'][int(7)]}","down":${r() < 0.5}}}`;
            side.push(async () => {
              const rep = await raw.send(`{"execute":"input-send-event","arguments":{"events":[${[...rels, btn].join(',')}]}}`);
              if (!('return' in rep)) note(`input-send-event: ${JSON.stringify(rep)}`);
            });
          } else {
            stats.propset++;
            const [name, value] = RUNTIME_PROPS[int(RUNTIME_PROPS.length)]!;
            side.push(async () => {
              const res = await qmp.execute('qom-set', { path: DEV_QOM, property: name, value }).then(
                () => 'accepted',
                (e: unknown) => String(e),
              );
              if (!/after it was realized|read-only|not found|Invalid/.test(res)) note(`qom-set ${name}=${String(value)}: ${res}`);
            });
          }
        }
        const replies = await qt.batch(lines);
        replies.forEach((rep, i) => {
          const bad = checks[i]?.(rep);
          if (bad) note(bad);
        });
        for (const f of side) await f();
        expect(qt.alive, `QEMU died during the fuzz\n${qt.stderr.slice(-4000)}`).toBe(true);
        if (REPORT.test(qt.stderr)) break;
      }
    } finally {
      feed.destroy();
      raw.close();
    }

    // No sanitizer report; still alive and answering, identity intact
    expect(REPORT.test(qt.stderr), qt.stderr.slice(-8000)).toBe(false);
    expect(violations, `stats ${JSON.stringify(stats)}`).toEqual([]);
    expect(await qmp.execute<{ status: string }>('query-status')).toMatchObject({ status: 'running' });
    expect(await pci.vendorId()).toBe(PCI_ID.vendorId);
    expect(await pci.deviceId()).toBe(PCI_ID.deviceId);
    expect(await rig.rd32('ID')).toBe(ID_MAGIC);
    expect(await rig.rd64('FB_WRITE_ATTEMPTS')).toBe(fbWrites);
    expect(await rig.qomU64('fb-write-attempts')).toBe(fbWrites);
    // unused BARs stay unimplemented; used ones keep their size; re-map and use
    const bars = await pci.sizeBars();
    expect(bars.map((b) => [b.index, b.size])).toEqual([[0, BAR.regsSize], [2, fbSize]]);
    const mapped = await pci.mapBars({ base: 0xd000_0000 });
    expect((await pci.read16(PCI_CFG.COMMAND)) & (PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER)).toBe(PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER);
    const regs2 = mapped.get(0)!.addr;
    const fb2 = mapped.get(2)!.addr;
    expect(await qt.readl(regs2 + REG.ID)).toBe(ID_MAGIC);
    expect(await qt.readl(regs)).not.toBe(ID_MAGIC); // old address no longer decodes (unassigned reads 0)
    const frame = await qt.readq(regs2 + REG.FRAME_NUMBER);
    const len = Math.min(fbSize, 1 << 20);
    expect(Buffer.compare(await qt.b64read(fb2, len), Buffer.from(expectedFbBytes(frame, geo, 0, len)))).toBe(0);
    expect(REPORT.test(qt.stderr), qt.stderr.slice(-8000)).toBe(false);
    if (OPS >= 2000) for (const [k, v] of Object.entries(stats)) expect(v, k).toBeGreaterThan(0);
    process.stderr.write(`fuzz ${cfg.name}: ${OPS} operations, ${qemu.sanitized ? 'ASan + UBSan' : 'plain'} QEMU, stats ${JSON.stringify(stats)}\n`);
  });
});

/**
 * §11 faults under the sanitizer QEMU: every fault and parameter set at random (valid and
 * invalid values, on a device in a native hot-plug slot so a surprise removal can really
 * happen and a new card is plugged back), interleaved with resets, virtual-clock steps (the
 * generator at 8 kHz and the spurious-interrupt and removal timers fire) and reads of the slot's
 * config space. (Register and BAR traffic under faults is the qtest cases' in faults.test.ts.)
 * What is checked: QEMU alive, no sanitizer report, a fault always reads back as one of the
 * SPEC's, only the SPEC's refusals.
 */
describe('seeded fault fuzz (SPEC §11)', () => {
  const FAULT_OPS = Math.max(2000, Math.floor(OPS / 10));
  const FAULT_VALUES = ['none', 'link-down', 'surprise-removal', 'irq-lost', 'spurious-irq', 'irq-storm', 'fifo-burst', 'mmio-spike', 'frame-stall', 'frame-stall-odd', 'bit-flip', 'bogus'];
  const PARAMS: Array<[string, number]> = [['fault-delay-ms', 0], ['fault-delay-ms', 5], ['fault-delay-ms', 70000], ['fault-period-us', 10], ['fault-period-us', 5], ['fault-burst', 65536], ['fault-burst', 0], ['fault-every', 1], ['fault-latency-us', 1], ['fault-rate', 1000000], ['fault-rate', 0]];

  it(`survives ${FAULT_OPS} random fault operations with no sanitizer report`, { timeout: 120_000 + FAULT_OPS * 40 }, async () => {
    const { QtestSession } = await import('../../orchestrator/src/qtest/client.ts');
    const { PciDevice, scanBus } = await import('../../orchestrator/src/qtest/pci.ts');
    await using qt = await QtestSession.start({
      qemu: qemu.path,
      args: ['-m', '64', '-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off', '-device', 'pcie-root-port,id=rp0,chassis=1,slot=1', '-device', 'hilbox-pci,id=hb0,bus=rp0,width=64,height=48,fps=200,fifo-depth=64,mouse-rate-hz=8000'],
      env: { ...process.env, ...SANITIZER_ENV },
      timeoutMs: 60_000,
      startTimeoutMs: 60_000,
    });
    const qmp = qt.qmp!;
    const r = rng(0x4842_1111);
    const int = (n: number): number => Math.floor(r() * n);
    // the device sits behind the root port: its own registers are reached through QOM and
    // the fault paths; config space of bus 0 (the port) is read to cross the slot's state
    const rp = (await scanBus(qt)).find((d) => d.vendorId === 0x1b36)!;
    const port = new PciDevice(qt, rp);
    const stats = { fault: 0, param: 0, step: 0, reset: 0, replug: 0, cfg: 0, refused: 0 };
    let present = true;
    for (let i = 0; i < FAULT_OPS; i++) {
      const k = r();
      if (k < 0.35) {
        stats.fault++;
        const value = FAULT_VALUES[int(FAULT_VALUES.length)]!;
        const res = await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value }).then(() => 'ok', (e: unknown) => String(e));
        if (res !== 'ok') {
          stats.refused++;
          if (!/is not allowed|needs|not found/.test(res)) throw new Error(`qom-set fault=${value}: ${res}`);
          if (/not found/.test(res)) present = false;
        } else if (present) {
          const back = await qmp.qomGet<string>(DEV_QOM, 'fault').catch(() => 'gone');
          if (back !== 'gone' && !FAULT_VALUES.includes(back)) throw new Error(`fault reads back ${back}`);
        }
      } else if (k < 0.55) {
        stats.param++;
        const [name, value] = PARAMS[int(PARAMS.length)]!;
        await qmp.execute('qom-set', { path: DEV_QOM, property: name, value }).catch(() => undefined);
      } else if (k < 0.8) {
        stats.step++;
        await qt.clockStep(BigInt(1 + int(5_000_000)));
      } else if (k < 0.85) {
        stats.reset++;
        await qmp.execute('system_reset');
      } else if (k < 0.95) {
        stats.cfg++;
        await port.read32(int(64) * 4);
      } else if (!present || int(4) === 0) {
        // the card may have left (surprise removal): put one back once QEMU has finished with it
        const peripherals = await qmp.execute<Array<{ name: string }>>('qom-list', { path: '/machine/peripheral' });
        if (!peripherals.some((p) => p.name === 'hb0')) {
          stats.replug++;
          await qmp.execute('device_add', { driver: 'hilbox-pci', id: 'hb0', bus: 'rp0', width: 64, height: 48, fps: 200, 'fifo-depth': 64, 'mouse-rate-hz': 8000 }).catch(() => undefined);
        }
        present = true;
      }
      if (!qt.alive || REPORT.test(qt.stderr)) break;
    }
    expect(qt.alive, `QEMU died during the fault fuzz\n${qt.stderr.slice(-4000)}`).toBe(true);
    expect(REPORT.test(qt.stderr), qt.stderr.slice(-8000)).toBe(false);
    expect(await qmp.execute<{ status: string }>('query-status')).toMatchObject({ status: 'running' });
    process.stderr.write(`fault fuzz: ${FAULT_OPS} operations, ${qemu.sanitized ? 'ASan + UBSan' : 'plain'} QEMU, stats ${JSON.stringify(stats)}\n`);
  });
});
