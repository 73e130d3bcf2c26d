/**
 * Shared set-up for the device tests: locating QEMU, starting a qtest session with one
 * hilbox-pci, enumerating and mapping it, and register helpers. The rig and the migration
 * helpers live in orchestrator/src/qtest/rig.ts (the security suite uses them too); here they
 * get the QEMU binary located once per test file.
 */
import { connect, type Socket } from 'node:net';
import { ensureQemu } from '../../orchestrator/src/products/ensure.ts';
import { loadFromFile as loadFromFileWith, startRig as startRigWith, type HilboxRig, type IncomingResult, type RigOptions } from '../../orchestrator/src/qtest/rig.ts';

export { DEV_ID, DEV_QOM, deviceArg, migrateToFile, waitMigration } from '../../orchestrator/src/qtest/rig.ts';
export type { HilboxRig, IncomingResult, RigOptions } from '../../orchestrator/src/qtest/rig.ts';

let qemuPath: Promise<string> | undefined;
/** The QEMU binary: $HILBOX_QEMU, else the project build (built on first use). */
export function qemuBinary(): Promise<string> {
  qemuPath ??= ensureQemu();
  return qemuPath;
}

/** Time the first build may take when a test file calls {@link qemuBinary} in beforeAll. */
export const BUILD_TIMEOUT_MS = 45 * 60_000;

/** Starts QEMU with one hilbox-pci, finds it on bus 0 and maps its BARs. */
export async function startRig(opts: RigOptions = {}): Promise<HilboxRig> {
  return startRigWith({ ...opts, qemu: opts.qemu ?? (await qemuBinary()) });
}

/** A destination QEMU loading `file` (orchestrator/src/qtest/rig.ts loadFromFile). */
export async function loadFromFile(file: string, opts: RigOptions & { clock: bigint }): Promise<IncomingResult> {
  return loadFromFileWith(file, { ...opts, qemu: opts.qemu ?? (await qemuBinary()) });
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A second QMP monitor (`-chardev socket,id=…,path=PATH,server=on,wait=off -mon chardev=…,mode=control`)
 * spoken to in raw JSON text: JSON.stringify cannot write 9223372036854775807.
 */
export async function rawQmp(path: string): Promise<{ send(json: string): Promise<Record<string, unknown>>; close(): void }> {
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
  sock.setEncoding('utf8');
  let buf = '';
  const waiters: Array<(msg: Record<string, unknown>) => void> = [];
  sock.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ('event' in msg) continue;
      waiters.shift()?.(msg);
    }
  });
  const next = () => new Promise<Record<string, unknown>>((r) => waiters.push(r));
  await next(); // greeting
  const send = async (json: string) => {
    const reply = next();
    sock.write(json + '\n');
    return reply;
  };
  await send('{"execute":"qmp_capabilities"}');
  return { send, close: () => sock.destroy() };
}

