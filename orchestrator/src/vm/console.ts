/**
 * Guest serial console capture. One job: read the console stream live, tee it into a log file,
 * keep a tail for error messages, feed the crash scanner, and let callers wait for a line.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Socket } from 'node:net';
import { CrashScanner, type CrashHit, type CrashSignature } from './crash-scan.ts';
import { CONSOLE_TAIL_LINES } from '../core/errors.ts';

type LineWaiter = { test: (line: string) => boolean; resolve: (line: string) => void };

export class ConsoleCapture {
  readonly scanner: CrashScanner;
  private readonly file: WriteStream;
  private readonly tailLines: string[] = [];
  private partial = '';
  /** Complete lines seen so far (a mark() is such a count). */
  private seen = 0;
  private waiters: LineWaiter[] = [];
  private crashListeners: ((hit: CrashHit) => void)[] = [];
  private closed = false;
  private closedWaiters: (() => void)[] = [];

  constructor(
    readonly logPath: string,
    signatures?: readonly CrashSignature[],
  ) {
    this.file = createWriteStream(logPath, { flags: 'a' });
    this.file.on('error', () => {});
    this.scanner = new CrashScanner((hit) => this.crashListeners.forEach((l) => l(hit)), signatures);
  }

  /** Starts reading from a connected serial socket; resolves when that socket closes. */
  attach(sock: Socket): Promise<void> {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.push(d));
    sock.on('error', () => {});
    return new Promise((resolve) =>
      sock.on('close', () => {
        this.flushPartial();
        resolve();
      }),
    );
  }

  /** Treats an unterminated last line as complete (the stream paused or ended). */
  flushPartial(): void {
    if (!this.partial) return;
    const line = this.partial.replace(/\r/g, '');
    this.partial = '';
    this.scanner.push('\n');
    this.addLine(line);
  }

  push(text: string): void {
    this.file.write(text);
    this.scanner.push(text);
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.addLine(raw.replace(/\r/g, ''));
  }

  private addLine(line: string): void {
    this.seen++;
    this.tailLines.push(line);
    if (this.tailLines.length > CONSOLE_TAIL_LINES) this.tailLines.shift();
    const still: LineWaiter[] = [];
    for (const w of this.waiters) {
      if (w.test(line)) w.resolve(line);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Console stream ended (QEMU exited or closed the chardev). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.flushPartial();
    this.scanner.flush();
    this.file.end();
    this.closedWaiters.forEach((f) => f());
  }

  /** Resolves when the stream has ended and the log file is flushed. */
  whenClosed(): Promise<void> {
    if (this.closed && this.file.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => (this.file.closed ? resolve() : void this.file.once('close', () => resolve()));
      if (this.closed) done();
      else this.closedWaiters.push(done);
    });
  }

  /** Last lines (at most CONSOLE_TAIL_LINES), including an unterminated last line. */
  tail(n = CONSOLE_TAIL_LINES): string[] {
    const all = this.partial ? [...this.tailLines, this.partial] : [...this.tailLines];
    return all.slice(-n);
  }

  /** A position in the stream: waitForLine({ since }) counts only lines after it. */
  mark(): number {
    return this.seen;
  }

  /**
   * Waits for a line matching `pattern`: lines arriving from now on, plus those of the tail
   * (`includeTail`) or only the tail's lines after a mark (`since`).
   */
  waitForLine(pattern: RegExp | string, opts: { signal?: AbortSignal; includeTail?: boolean; since?: number } = {}): Promise<string> {
    const test = typeof pattern === 'string' ? (l: string) => l.includes(pattern) : (l: string) => pattern.test(l);
    if (opts.includeTail || opts.since !== undefined) {
      const after = opts.since === undefined ? this.tailLines.length : Math.min(this.tailLines.length, this.seen - opts.since);
      const seen = this.tailLines.slice(this.tailLines.length - after).find(test);
      if (seen !== undefined) return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w: LineWaiter = { test, resolve };
      this.waiters.push(w);
      opts.signal?.addEventListener('abort', () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(opts.signal?.reason);
      });
    });
  }

  onCrash(listener: (hit: CrashHit) => void): void {
    this.crashListeners.push(listener);
  }
}
