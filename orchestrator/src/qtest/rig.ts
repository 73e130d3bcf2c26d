/**
 * A qtest QEMU holding one hilbox-pci, enumerated and mapped, with register helpers; and the
 * migration helpers on top of it (the whole VM state to a file with QMP `migrate`, loaded into a
 * fresh QEMU started with `-incoming defer`). Used by the device tests (test/device/) and by the
 * security suite's vmstate-hostile case (a crafted stream refused by a fresh QEMU).
 */
import { ensureQemu } from '../products/ensure.ts';
import { QemuExitError, QtestSession, qcmd, type QtestStartOptions } from './client.ts';
import { findDevice, type BarInfo, type PciDevice } from './pci.ts';
import {
  BAR,
  DEFAULT_PROPS,
  DEVICE_TYPE,
  EV_HEAD_WORDS,
  PCI_ID,
  REG,
  effectiveStride,
  frameNumberAt,
  parseEventHeadWords,
  type DeviceProps,
  type EventRecord,
  type FbGeometry,
  type RegName,
} from '../device/spec.ts';

/** QEMU id of the device under test; QOM path below. */
export const DEV_ID = 'hb0';
export const DEV_QOM = `/machine/peripheral/${DEV_ID}`;

/** `-device hilbox-pci,…` argument for a property set. */
export function deviceArg(props: Partial<DeviceProps> & Record<string, string | number | boolean | undefined> = {}, id = DEV_ID): string {
  const parts = [DEVICE_TYPE, `id=${id}`];
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    parts.push(`${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)}`);
  }
  return parts.join(',');
}

export interface HilboxRig {
  qt: QtestSession;
  pci: PciDevice;
  bars: Map<number, BarInfo>;
  /** BAR0 / BAR2 base addresses. */
  regs: number;
  fb: number;
  props: DeviceProps;
  geo: FbGeometry;
  rd32(reg: RegName | number): Promise<number>;
  wr32(reg: RegName | number, v: number): Promise<void>;
  /** 64-bit register with one 8-byte access. */
  rd64(reg: RegName | number): Promise<bigint>;
  /** 64-bit register with two 4-byte accesses, low first. */
  rd64pair(reg: RegName | number): Promise<bigint>;
  evHead(): Promise<EventRecord>;
  /** Pops up to `max` records (head read + EV_POP) while EV_COUNT > 0. */
  drain(max?: number): Promise<EventRecord[]>;
  qomU64(prop: string): Promise<bigint>;
  /**
   * Waits until the device shows the frame of its clock: `FRAME_SEQ` even and `FRAME_NUMBER`
   * the frame of `DEVICE_CLOCK` (SPEC §4.1, §4.3). In `fb-mode=direct` frames are rendered in
   * the device's own thread and published a render time after the clock reaches them, so a
   * test that moved the qtest clock (which then stands still) waits here before it looks at
   * the frame registers or BAR2. Not for a device whose link is down (reads are all ones).
   */
  settle(timeoutMs?: number): Promise<void>;
  /** `qt.clockStep` / `qt.clockSet`, then {@link settle}; resolves with the clock. */
  clockStep(ns?: number | bigint): Promise<bigint>;
  clockSet(ns: number | bigint): Promise<bigint>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface RigOptions {
  props?: Partial<DeviceProps>;
  /** Extra QEMU args (chardevs, …), placed before the device. */
  args?: string[];
  /** Map BARs and enable memory decoding (default true). */
  map?: boolean;
  start?: Partial<QtestStartOptions>;
  /** QEMU binary (default: the project build, ensureQemu). */
  qemu?: string;
}

/** Starts QEMU with one hilbox-pci, finds it on bus 0 and maps its BARs. */
export async function startRig(opts: RigOptions = {}): Promise<HilboxRig> {
  const props: DeviceProps = { ...DEFAULT_PROPS, ...opts.props };
  const qemu = opts.qemu ?? (await ensureQemu());
  const qt = await QtestSession.start({ qemu, args: [...(opts.args ?? []), '-device', deviceArg(opts.props ?? {})], ...opts.start });
  try {
    const pci = await findDevice(qt, PCI_ID.vendorId, PCI_ID.deviceId);
    if (!pci) throw new Error(`no ${PCI_ID.vendorId.toString(16)}:${PCI_ID.deviceId.toString(16)} on bus 0`);
    const bars = opts.map === false ? new Map<number, BarInfo>() : await pci.mapBars();
    const regs = bars.get(BAR.regs)?.addr ?? 0;
    const fb = bars.get(BAR.fb)?.addr ?? 0;
    const off = (r: RegName | number): number => regs + (typeof r === 'number' ? r : REG[r]);
    const rig: HilboxRig = {
      qt,
      pci,
      bars,
      regs,
      fb,
      props,
      geo: { width: props.width, height: props.height, stride: effectiveStride(props) },
      rd32: async (r) => (await qt.readl(off(r))) >>> 0,
      wr32: (r, v) => qt.writel(off(r), v >>> 0),
      rd64: (r) => qt.readq(off(r)),
      rd64pair: async (r) => {
        const lo = await qt.readl(off(r));
        const hi = await qt.readl(off(r) + 4);
        return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      },
      evHead: async () => {
        const words: number[] = [];
        for (let i = 0; i < EV_HEAD_WORDS; i++) words.push((await qt.readl(regs + REG.EV_HEAD + 4 * i)) >>> 0);
        return parseEventHeadWords(words);
      },
      drain: async (max = 100_000) => {
        const out: EventRecord[] = [];
        while (out.length < max && (await qt.readl(regs + REG.EV_COUNT)) > 0) {
          out.push(await rig.evHead());
          await qt.writel(regs + REG.EV_POP, 1);
        }
        return out;
      },
      qomU64: async (prop) => BigInt(await qt.qmp!.qomGet<number | string>(DEV_QOM, prop)),
      settle: async (timeoutMs = 10_000) => {
        const deadline = Date.now() + timeoutMs;
        const probe = [qcmd.read(4, off('FRAME_SEQ')), qcmd.read(8, off('FRAME_NUMBER')), qcmd.read(8, off('DEVICE_CLOCK'))];
        for (;;) {
          const [seq, n, clock] = (await qt.batch(probe)).map((v) => BigInt(v));
          if (seq! % 2n === 0n && n === frameNumberAt(clock!, props.fps)) return;
          if (Date.now() > deadline) throw new Error(`the device did not settle in ${timeoutMs} ms: FRAME_SEQ ${seq}, FRAME_NUMBER ${n}, DEVICE_CLOCK ${clock}`);
          await new Promise((r) => setTimeout(r, 1));
        }
      },
      clockStep: async (ns) => {
        const t = await qt.clockStep(ns);
        await rig.settle();
        return t;
      },
      clockSet: async (ns) => {
        const t = await qt.clockSet(ns);
        await rig.settle();
        return t;
      },
      close: () => qt.close(),
      [Symbol.asyncDispose]: () => qt.close(),
    };
    return rig;
  } catch (e) {
    await qt.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Migration and snapshots under qtest

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Polls `query-migrate` until the migration completed; throws when it failed. */
export async function waitMigration(qt: QtestSession, timeoutMs = 60_000, onPoll?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await qt.qmp!.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`migration ${st.status}: ${st['error-desc'] ?? ''}`);
    if (Date.now() > deadline) throw new Error(`migration still ${st.status} after ${timeoutMs} ms`);
    if (onPoll) await onPoll();
    else await new Promise((r) => setTimeout(r, 10));
  }
}

/** Saves the whole VM state to `file` (QMP `migrate` to `exec:cat > file`). The source VM ends paused. */
export async function migrateToFile(qt: QtestSession, file: string, opts: { timeoutMs?: number; onPoll?: () => Promise<void> } = {}): Promise<void> {
  await qt.qmp!.execute('migrate', { uri: `exec:cat > ${shq(file)}` });
  await waitMigration(qt, opts.timeoutMs, opts.onPoll);
}

export type IncomingResult =
  | { ok: true; rig: HilboxRig }
  | { ok: false; exitCode: number | null; signal: NodeJS.Signals | null; stderr: string };

/**
 * Starts a destination QEMU (`-incoming defer`) with the device (its BARs mapped as on the
 * source, so the rig's addresses stay right), sets its virtual clock to `clock` (the qtest
 * clock is not part of the migration stream) and loads `file`. Resolves with the rig when the
 * load completed, or with how QEMU ended when it did not (QEMU 7.2 exits after a failed load).
 */
export async function loadFromFile(file: string, opts: RigOptions & { clock: bigint }): Promise<IncomingResult> {
  const rig = await startRig({ ...opts, args: [...(opts.args ?? []), '-incoming', 'defer'] });
  try {
    await rig.qt.clockSet(opts.clock);
    await rig.qt.qmp!.execute('migrate-incoming', { uri: `exec:cat ${shq(file)}` });
    await waitMigration(rig.qt, 60_000);
    return { ok: true, rig };
  } catch (e) {
    const deadline = Date.now() + 10_000;
    let ended: unknown;
    while (Date.now() < deadline) {
      ended = await rig.qt.command('endianness').then(
        () => undefined,
        (err: unknown) => err,
      );
      if (ended) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const stderr = rig.qt.stderr;
    await rig.close();
    if (!(ended instanceof QemuExitError)) throw e;
    return { ok: false, exitCode: ended.exitCode, signal: ended.signal, stderr };
  }
}
