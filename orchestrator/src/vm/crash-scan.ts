/**
 * Crash signatures on a Linux console (a syzkaller-like list; each guest brings its own list) and a
 * line-oriented scanner.
 * One job: decide whether console text shows a kernel crash and which one.
 */

export interface CrashSignature {
  /** Short stable name, e.g. "kernel-panic". */
  name: string;
  /** Matches one console line (timestamps like "[   1.234] " are stripped first). */
  pattern: RegExp;
  /** A fatal signature means the guest is gone or unusable (panic), not just a splat. */
  fatal?: boolean;
}

/** Console lines the launcher writes for QMP guest events (machine.ts), so signatures can match them. */
export const QMP_PANIC_LINE = 'hilbox: QMP GUEST_PANICKED';
export const QMP_RESET_LINE = 'hilbox: unexpected guest reset';

export const LINUX_CRASH_SIGNATURES: readonly CrashSignature[] = [
  // A pvpanic device reported a panic (any guest with a pvpanic driver).
  { name: 'guest-panicked', pattern: new RegExp(`^${QMP_PANIC_LINE}`), fatal: true },
  { name: 'kernel-panic', pattern: /Kernel panic - not syncing/, fatal: true },
  { name: 'kernel-bug', pattern: /kernel BUG at \S+/ },
  { name: 'kasan', pattern: /BUG: KASAN: / },
  { name: 'kfence', pattern: /BUG: KFENCE: / },
  { name: 'ubsan', pattern: /UBSAN: / },
  { name: 'kmsan', pattern: /BUG: KMSAN: / },
  { name: 'null-deref', pattern: /BUG: (?:kernel )?NULL pointer dereference/ },
  { name: 'paging-request', pattern: /BUG: unable to handle (?:kernel )?(?:paging request|page fault)/ },
  { name: 'soft-lockup', pattern: /BUG: soft lockup/ },
  { name: 'hung-task', pattern: /INFO: task .* blocked for more than \d+ seconds/ },
  { name: 'rcu-stall', pattern: /INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected (?:expedited )?stall/ },
  { name: 'sleeping-in-atomic', pattern: /BUG: sleeping function called from invalid context/ },
  { name: 'scheduling-while-atomic', pattern: /BUG: scheduling while atomic/ },
  { name: 'lockdep', pattern: /WARNING: (?:possible (?:circular|recursive) locking|inconsistent lock state|suspicious RCU usage)/ },
  { name: 'bad-page', pattern: /BUG: Bad page (?:state|map)/ },
  { name: 'gpf', pattern: /general protection fault/ },
  { name: 'oops', pattern: /\bOops(?::| - )/ },
  { name: 'bug', pattern: /\bBUG: / },
  { name: 'warning', pattern: /\bWARNING: (?:CPU: \d+ PID: \d+ at|.* at \S+:\d+)/ },
  { name: 'warning', pattern: /------------\[ cut here \]------------/ },
  { name: 'call-trace', pattern: /^Call Trace:/ },
];

/** Lines that look like signatures but are not crashes (e.g. our own test's echo). */
const IGNORE: readonly RegExp[] = [/hilbox-ignore-crash/];

const TIMESTAMP = /^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?/;

export interface CrashHit {
  signature: string;
  fatal: boolean;
  /** The line that matched, then following context lines as they arrive. */
  lines: string[];
  /** 1-based line number in the scanned stream. */
  lineNumber: number;
}

/** Returns the first signature matching a single console line, if any. */
export function matchCrashLine(
  line: string,
  signatures: readonly CrashSignature[] = LINUX_CRASH_SIGNATURES,
): CrashSignature | undefined {
  const text = line.replace(TIMESTAMP, '');
  if (IGNORE.some((re) => re.test(text))) return undefined;
  return signatures.find((s) => s.pattern.test(text));
}

/**
 * Incremental scanner: feed it console chunks; it splits lines, records hits and keeps up to
 * `contextLines` lines after each hit so a report shows the splat, not just its title.
 */
export class CrashScanner {
  readonly hits: CrashHit[] = [];
  private partial = '';
  private lineNo = 0;
  private open: { hit: CrashHit; remaining: number }[] = [];

  constructor(
    private readonly onHit?: (hit: CrashHit) => void,
    private readonly signatures: readonly CrashSignature[] = LINUX_CRASH_SIGNATURES,
    private readonly contextLines = 30,
  ) {}

  /** Feeds raw console text (any chunking). */
  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.scanLine(line);
  }

  /** Scans the unterminated last line too (call at end of stream). */
  flush(): void {
    if (this.partial) this.scanLine(this.partial);
    this.partial = '';
  }

  /** The most severe hit: the first fatal one, else the first one. */
  get first(): CrashHit | undefined {
    return this.hits.find((h) => h.fatal) ?? this.hits[0];
  }

  private scanLine(raw: string): void {
    this.lineNo++;
    const line = raw.replace(/\r/g, '');
    for (const o of this.open) {
      o.hit.lines.push(line);
      o.remaining--;
    }
    this.open = this.open.filter((o) => o.remaining > 0);
    const sig = matchCrashLine(line, this.signatures);
    if (!sig) return;
    // A "Call Trace:" right after another hit is part of that splat, not a new crash.
    if (sig.name === 'call-trace' && this.open.length > 0) return;
    const hit: CrashHit = { signature: sig.name, fatal: sig.fatal === true, lines: [line], lineNumber: this.lineNo };
    this.hits.push(hit);
    this.open.push({ hit, remaining: this.contextLines });
    this.onHit?.(hit);
  }
}

/** Scans a complete text; convenience for logs read from disk. */
export function scanForCrashes(text: string, signatures?: readonly CrashSignature[]): CrashHit[] {
  const s = new CrashScanner(undefined, signatures);
  s.push(text);
  s.flush();
  return s.hits;
}
