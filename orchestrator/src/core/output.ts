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
