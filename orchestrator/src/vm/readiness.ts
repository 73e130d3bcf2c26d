/**
 * Boot readiness strategies (in the manner of testcontainers' wait strategies). One job: decide
 * when a booting guest is up, and hand over an SSH client on which a command has run. The guest
 * picks its strategy (guest/*.ts); the launcher (machine.ts) runs it under the boot deadline.
 */
import type { ConsoleCapture } from './console.ts';
import type { ExecResult, SshClient } from '../ssh/client.ts';

/** What a readiness strategy is given while the guest boots. */
export interface ReadinessContext {
  console: ConsoleCapture;
  /** Opens SSH to the guest (its target, the forwarded port), giving up after `timeoutMs`. */
  connect(timeoutMs: number): Promise<SshClient>;
  /** Aborted when the boot is given up (timeout, QEMU exit, a failure marker). */
  signal: AbortSignal;
  /** Date.now() value by which the guest must be up. */
  deadline: number;
  /** A console mark (after a reboot): only lines after it count; undefined: the whole tail counts. */
  since?: number;
  /** Says what the boot is waiting for now (it goes into the timeout message). */
  stage(text: string): void;
  /** The guest was resumed from a boot snapshot: it is past its boot, no console marker will come. */
  resumed?: boolean;
  /** Run once the guest is booted and before the first SSH session (the launcher stores a boot snapshot there). */
  beforeConnect?: () => Promise<void>;
}

/** How to know a guest booted: resolves with an SSH client on which a command has run. */
export interface Readiness {
  /** What is awaited, for messages ("ready marker … on the console"). */
  readonly description: string;
  /** Console text that says the boot failed for sure (fail fast instead of waiting). */
  readonly failureMarker?: RegExp;
  wait(ctx: ReadinessContext): Promise<SshClient>;
}

/** Runs `true` (or the given command) once SSH answers; closes the client when that fails. */
async function proveSsh(ctx: ReadinessContext, command: string, accept: (r: ExecResult) => boolean): Promise<SshClient> {
  const left = (): number => Math.max(1000, ctx.deadline - Date.now());
  const ssh = await ctx.connect(left());
  try {
    const r = await ssh.exec(command, { timeoutMs: left() });
    if (!accept(r)) throw new Error(`\`${command}\` exited ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 200)}`);
    return ssh;
  } catch (e) {
    ssh.close();
    throw e;
  }
}

/** Linux: the guest's init prints a marker on the serial console once sshd listens. */
export class ConsoleLineReadiness implements Readiness {
  readonly description: string;
  constructor(
    readonly marker: string | RegExp,
    readonly failureMarker?: RegExp,
    /** The first command run in a guest resumed from a boot snapshot (e.g. set its clock: it stopped when the snapshot was taken); default `true`. */
    readonly resumeCommand: () => string = () => 'true',
  ) {
    this.description = `ready marker ${JSON.stringify(String(marker))} on the console`;
  }

  async wait(ctx: ReadinessContext): Promise<SshClient> {
    if (ctx.resumed) {
      ctx.stage('SSH (resumed from a boot snapshot)');
      return proveSsh(ctx, this.resumeCommand(), (r) => r.code === 0);
    }
    const t0 = Date.now();
    ctx.stage(this.description);
    await ctx.console.waitForLine(this.marker, { signal: ctx.signal, ...(ctx.since === undefined ? { includeTail: true } : { since: ctx.since }) });
    if (ctx.beforeConnect) {
      ctx.stage(`the boot snapshot to be stored (marker seen after ${Date.now() - t0} ms)`);
      await ctx.beforeConnect();
    }
    ctx.stage(`SSH (marker seen after ${Date.now() - t0} ms)`);
    return proveSsh(ctx, 'true', (r) => r.code === 0);
  }
}

/** Thrown by a readiness strategy when waiting longer cannot help (e.g. SSH refuses the user). */
export class ReadinessRefused extends Error {}

/**
 * Windows: nothing comes on the serial port, so poll SSH until a command answers as expected
 * (`cmd /c ver` → "Microsoft Windows …"). An authentication failure ends the wait at once.
 */
export class SshCommandReadiness implements Readiness {
  readonly description: string;
  constructor(
    readonly command: string,
    readonly expect: RegExp,
    readonly retryMs = 2000,
    readonly hint = '',
  ) {
    this.description = `\`${command}\` to answer over SSH`;
  }

  async wait(ctx: ReadinessContext): Promise<SshClient> {
    let last = 'no attempt yet';
    for (;;) {
      ctx.stage(`${this.description} (last: ${last})`);
      try {
        return await proveSsh(ctx, this.command, (r) => r.code === 0 && this.expect.test(r.stdout));
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        last = (e as Error).message.split('\n')[0] ?? String(e);
        if (/authentication methods failed/i.test(last)) throw new ReadinessRefused(`SSH refused the login: ${last}${this.hint ? ` — ${this.hint}` : ''}`);
      }
      if (Date.now() + this.retryMs > ctx.deadline) throw new Error(`${this.description}: still no answer (last: ${last})`);
      await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }
}

