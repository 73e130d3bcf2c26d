/**
 * The progress interface every layer reports through. One job: the shape of progress output;
 * the terminal and CI implementation lives in cli/output.ts.
 */
export interface Output {
  /** A step starts (e.g. "booting guest"). */
  step(text: string): void;
  /** A line of detail from a long step (build output); shown as the spinner's tail on a TTY. */
  progress(line: string): void;
  /** The current step is done. */
  done(text?: string): void;
  warn(text: string): void;
  info(text: string): void;
  /** Stops any live display (always call before exiting). */
  close(): void;
}

/** An Output that discards everything (library use, tests). */
export const silentOutput: Output = { step() {}, progress() {}, done() {}, warn() {}, info() {}, close() {} };

/**
 * An Output for one of several runs going on at once: every step, completion and warning becomes
 * one `[prefix] …` line of `base` (no live display of its own); `close` leaves `base` open.
 */
export function prefixedOutput(base: Output, prefix: string): Output {
  let current = '';
  let started = 0;
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  return {
    step(text) {
      current = text;
      started = Date.now();
      base.info(`[${prefix}] ${text} …`);
    },
    progress(line) {
      base.progress(`[${prefix}] ${line}`);
    },
    done(text) {
      if (!current) return;
      base.info(`[${prefix}] done: ${text ?? current} (${elapsed()})`);
      current = '';
    },
    warn(text) {
      base.warn(`[${prefix}] ${text}`);
    },
    info(text) {
      base.info(`[${prefix}] ${text}`);
    },
    close() {},
  };
}
