/**
 * Error taxonomy of hilbox, importable by every layer. Bad input (a scenario field, a case or
 * metric name, a CLI argument, a device property) is a UsageError, found before anything boots.
 * The VM errors follow syzkaller's vm/: an infrastructure problem on the host is not the guest's
 * fault, a boot failure is, a crash signature is a finding, and a timeout is a timeout. Every
 * error that concerns a running guest carries the tail of its console log.
 */

/**
 * An error in what the user gave us: a scenario field, a case or metric name, a CLI argument, a
 * device property. The CLI maps every subclass to exit code 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** How many console lines an error keeps. */
export const CONSOLE_TAIL_LINES = 100;

/** Formats a console tail for inclusion in an error message. */
export function formatTail(title: string, lines: readonly string[]): string {
  if (lines.length === 0) return `\n--- ${title}: (empty) ---`;
  return `\n--- ${title} (last ${lines.length} lines) ---\n${lines.join('\n')}\n--- end of ${title} ---`;
}

export interface GuestContext {
  /** Last lines of the guest serial console (at most CONSOLE_TAIL_LINES). */
  consoleTail?: readonly string[];
  /** Path of the full console log file, when one is kept. */
  consoleLogPath?: string;
  /** Last lines QEMU wrote to stderr. */
  qemuStderr?: readonly string[];
  cause?: unknown;
}

/** Base class of every hilbox error; `kind` is stable for programmatic checks. */
export class HilboxError extends Error {
  readonly kind: string = 'hilbox';
  readonly consoleTail: readonly string[];
  readonly consoleLogPath: string | undefined;
  readonly qemuStderr: readonly string[];

  constructor(summary: string, ctx: GuestContext = {}) {
    const tail = (ctx.consoleTail ?? []).slice(-CONSOLE_TAIL_LINES);
    const stderr = ctx.qemuStderr ?? [];
    let message = summary;
    if (ctx.consoleLogPath) message += `\n(console log: ${ctx.consoleLogPath})`;
    if (stderr.length > 0) message += formatTail('QEMU stderr', stderr);
    if (ctx.consoleTail) message += formatTail('guest console', tail);
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.consoleTail = tail;
    this.consoleLogPath = ctx.consoleLogPath;
    this.qemuStderr = stderr;
  }
}

/** The host failed us: QEMU missing, socket/port trouble, QEMU killed or crashed for host reasons. */
export class InfraError extends HilboxError {
  override readonly kind = 'infra';
}

/** The guest did not come up: no ready marker / no SSH in time, or it died while booting. */
export class BootError extends HilboxError {
  override readonly kind = 'boot';
}

/** The guest powered off or rebooted by itself after booting (no crash signature seen). */
export class GuestExitError extends HilboxError {
  override readonly kind = 'guest-exit';
}

/** A crash signature (oops, panic, KASAN, …) appeared on the guest console. */
export class GuestCrashError extends HilboxError {
  override readonly kind = 'crash';
  constructor(
    readonly signature: string,
    readonly matchedLines: readonly string[],
    ctx: GuestContext = {},
  ) {
    super(`guest crashed: ${signature}\n${matchedLines.map((l) => `  > ${l}`).join('\n')}`, ctx);
  }
}

/** An operation did not finish in time (already scaled for the accelerator). */
export class TimeoutError extends HilboxError {
  override readonly kind = 'timeout';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    ctx: GuestContext = {},
  ) {
    super(`${operation} timed out after ${timeoutMs} ms`, ctx);
  }
}
