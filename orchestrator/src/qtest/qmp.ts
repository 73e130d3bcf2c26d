/**
 * Minimal QMP client for qtest sessions: greeting, `qmp_capabilities`, `execute`, and a log of
 * asynchronous events. Deliberately small; the orchestrator's full QMP client lives in
 * orchestrator/src/qmp/.
 */
import type { Socket } from 'node:net';

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

/** One asynchronous QMP event. */
export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  id: string;
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class MiniQmp {
  /** Events received so far, oldest first. */
  readonly events: QmpEvent[] = [];
  private buf = '';
  private pending: Pending[] = [];
  private greetingWaiter: { resolve: (g: unknown) => void; reject: (e: Error) => void } | undefined;
  private greeting: unknown;
  private failure: Error | undefined;
  private nextId = 1;

  /**
   * @param sock connected QMP socket (QEMU side of `-qmp`/`-mon mode=control`)
   * @param timeoutMs default per-command timeout
   * @param describeFailure returns the error to report when the connection ends (e.g. QEMU exited)
   */
  constructor(
    private readonly sock: Socket,
    private readonly timeoutMs = 10_000,
    private readonly describeFailure: () => Error | Promise<Error> = () => new Error('QMP connection closed'),
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('close', () => {
      void Promise.resolve(this.describeFailure()).then((e) => this.fail(e));
    });
    sock.on('error', () => {
      /* 'close' follows */
    });
  }

  /** Waits for the greeting and negotiates capabilities. Returns the greeting object. */
  async handshake(): Promise<unknown> {
    const greeting =
      this.greeting ??
      (await new Promise<unknown>((resolve, reject) => {
        if (this.failure) return reject(this.failure);
        const timer = setTimeout(() => reject(new Error('timeout waiting for the QMP greeting')), this.timeoutMs);
        this.greetingWaiter = {
          resolve: (g) => {
            clearTimeout(timer);
            resolve(g);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
      }));
    await this.execute('qmp_capabilities');
    return greeting;
  }

  /** Runs a QMP command and returns its `return` value; throws {@link QmpError} on `error`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `hb-${this.nextId++}`;
    const msg = JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = this.pending.filter((p) => p.id !== id);
        reject(new Error(`QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.push({ id, command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(msg + '\n');
    });
  }

  /** `qom-get` convenience. */
  qomGet<T = unknown>(path: string, property: string): Promise<T> {
    return this.execute<T>('qom-get', { path, property });
  }

  close(): void {
    this.fail(new Error('QMP client closed'));
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return this.fail(new Error(`QMP: unparsable message: ${line.slice(0, 200)}`));
    }
    if ('QMP' in msg) {
      this.greeting = msg;
      this.greetingWaiter?.resolve(msg);
      this.greetingWaiter = undefined;
      return;
    }
    if ('event' in msg) {
      this.events.push(msg as unknown as QmpEvent);
      return;
    }
    // Replies echo the id we sent; a reply to a command that already timed out is dropped.
    const idx = this.pending.findIndex((q) => q.id === msg.id);
    if (idx < 0) return;
    const [p] = this.pending.splice(idx, 1);
    if (!p) return;
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? 'Unknown', err.desc ?? JSON.stringify(err)));
    } else {
      p.resolve(msg.return);
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
