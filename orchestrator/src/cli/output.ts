/**
 * Progress output for the CLI: a live spinner line on a terminal, plain lines in CI or when piped
 * (each step, and a build's progress at least every 10 s while it reports), nothing but the final
 * JSON on stdout with --json.
 */
import type { Output } from '../core/output.ts';

export type { Output };

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function createOutput(opts: { json: boolean; stream?: NodeJS.WriteStream }): Output {
  const stream = opts.stream ?? process.stderr;
  const live = Boolean(stream.isTTY) && !process.env.CI && !opts.json;
  let current = '';
  let detail = '';
  let started = 0;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastProgress = 0;
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const clear = () => {
    if (live) stream.write('\r\x1b[2K');
  };
  const draw = () => {
    if (!live || !current) return;
    const cols = stream.columns ?? 100;
    const text = `${FRAMES[frame++ % FRAMES.length]} ${current} (${elapsed()})${detail ? ` — ${detail}` : ''}`;
    stream.write(`\r\x1b[2K${text.slice(0, cols - 1)}`);
  };
  const line = (text: string) => {
    clear();
    stream.write(`${text}\n`);
    draw();
  };
  return {
    step(text) {
      if (current) this.done();
      current = text;
      detail = '';
      started = Date.now();
      lastProgress = 0; // a step's first progress line always shows (e.g. a build's "up to date")
      if (live) timer ??= setInterval(draw, 100);
      else line(`hilbox: ${text} …`);
    },
    progress(l) {
      if (live) detail = l.trim();
      else if (opts.json) return;
      // Piped or in CI: every line with HILBOX_VERBOSE, else one every 10 s at most (a build's
      // `[n/N] … left` report comes that often), so a log never goes quiet through a long build.
      else if (process.env.HILBOX_VERBOSE || Date.now() - lastProgress >= 10_000) {
        lastProgress = Date.now();
        line(`  ${l.trim()}`);
      }
    },
    done(text) {
      if (!current) return;
      const msg = `${text ?? current} (${elapsed()})`;
      current = '';
      clear();
      stream.write(live ? `✔ ${msg}\n` : `hilbox: done: ${msg}\n`);
    },
    warn(text) {
      line(`hilbox: warning: ${text}`);
    },
    info(text) {
      line(`hilbox: ${text}`);
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clear();
    },
  };
}
