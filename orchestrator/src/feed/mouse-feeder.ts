/**
 * Host side of the hilbox-pci mouse feed (SPEC §6). One job: write records to the feed socket
 * at a controlled rate, in bundles (reports) whose last record carries END_OF_REPORT. The device
 * applies no back-pressure, so pacing is the host's duty.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeBundle, patternEvent, type MouseEvent } from './record.ts';

export interface FeedOptions {
  /** Events per second (default 1000). */
  eventsPerSecond?: number;
  /** Events per report (default 1). */
  bundle?: number;
  signal?: AbortSignal;
}

export interface FeedResult {
  events: number;
  reports: number;
  bytes: number;
  durationMs: number;
  /** Achieved events per second. */
  rate: number;
}

export class MouseFeeder {
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('error', () => {});
    sock.on('close', () => (this.closed = true));
  }

  /** Connects to the device's feed chardev socket (retrying while QEMU creates it). */
  static async connect(path: string, timeoutMs = 5000): Promise<MouseFeeder> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const s = await new Promise<Socket>((resolve, reject) => {
          const c = connect(path);
          c.once('connect', () => (c.removeListener('error', reject), resolve(c)));
          c.once('error', reject);
        });
        return new MouseFeeder(s);
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`cannot connect to feed socket ${path}: ${(e as Error).message}`);
        await sleep(25);
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes raw bytes (e.g. garbage to test resynchronisation, SPEC §6). */
  writeRaw(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sock.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * Sends `events` (an array, or a count for the deterministic pattern) paced at
   * `eventsPerSecond`, grouped in reports of `bundle`. A late timer catches up by writing every
   * report already due in one write.
   */
  async feed(events: readonly MouseEvent[] | number, opts: FeedOptions = {}): Promise<FeedResult> {
    const rate = opts.eventsPerSecond ?? 1000;
    const bundle = opts.bundle ?? 1;
    if (!(rate > 0)) throw new RangeError(`eventsPerSecond ${rate}`);
    if (!Number.isInteger(bundle) || bundle < 1) throw new RangeError(`bundle ${bundle}`);
    const list = typeof events === 'number' ? Array.from({ length: events }, (_, k) => patternEvent(k)) : events;
    const reports: Buffer[] = [];
    for (let i = 0; i < list.length; i += bundle) reports.push(encodeBundle(list.slice(i, i + bundle)));
    const reportIntervalMs = (1000 * bundle) / rate;
    const t0 = performance.now();
    let next = 0;
    let bytes = 0;
    while (next < reports.length) {
      opts.signal?.throwIfAborted();
      if (this.closed) throw new Error('feed socket closed (QEMU gone?)');
      const now = performance.now() - t0;
      // Report j is due at j × interval: write everything due by now in one go.
      const due = Math.min(reports.length, Math.floor(now / reportIntervalMs) + 1);
      if (due > next) {
        const chunk = Buffer.concat(reports.slice(next, due));
        bytes += chunk.length;
        next = due;
        await this.writeRaw(chunk);
        continue;
      }
      const wait = next * reportIntervalMs - now;
      await sleep(Math.max(0, Math.min(wait, 50)));
    }
    const durationMs = performance.now() - t0;
    return { events: list.length, reports: reports.length, bytes, durationMs, rate: durationMs > 0 ? (list.length * 1000) / durationMs : Infinity };
  }

  close(): void {
    this.closed = true;
    this.sock.end();
  }
}
