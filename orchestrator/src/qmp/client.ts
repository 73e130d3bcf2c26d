/**
 * QMP client over a unix socket. One job: speak QMP — greeting, `qmp_capabilities`, commands
 * with ids and timeouts, asynchronous events — and log every message (a QMP transcript artifact).
 * Convenience wrappers for hilbox live at the bottom and use only `execute`.
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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

export class QmpClosedError extends Error {
  constructor(readonly command: string | undefined, reason: string) {
    super(command ? `QMP ${command}: connection closed (${reason})` : `QMP connection closed (${reason})`);
    this.name = 'QmpClosedError';
  }
}

export class QmpTimeoutError extends Error {
  constructor(readonly command: string, readonly timeoutMs: number) {
    super(`QMP ${command} got no reply within ${timeoutMs} ms`);
    this.name = 'QmpTimeoutError';
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpConnectOptions {
  /** Keep retrying the connection until this many ms have passed (socket not there yet). */
  connectTimeoutMs?: number;
  /** Default per-command timeout. */
  commandTimeoutMs?: number;
  /** Append every message, one JSON line each, to this file. */
  logPath?: string;
  /**
   * Asked once when the connection fails or closes without close(): what became of QEMU (how it
   * exited and the end of its stderr). The text joins the reason of every command and wait that
   * fails because of it, so "connection closed (read ECONNRESET)" says why. Should settle within
   * a few seconds.
   */
  closeDetail?: () => Promise<string | undefined>;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

async function connectWithRetry(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`cannot connect to QMP socket ${path}: ${(e as Error).message}`);
      await sleep(25);
    }
  }
}

export class QmpClient extends EventEmitter {
  private buf = '';
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private closedReason: string | undefined;
  private readonly log: WriteStream | undefined;
  private readonly closeWaiters: (() => void)[] = [];
  greeting: unknown;
  /** Settles once the QMP log file is flushed and closed (after close()); at once without a log. */
  readonly logClosed: Promise<void>;
  private greetingWaiter: { resolve: (g: unknown) => void; reject: (e: Error) => void } | undefined;

  private lost = false;

  private constructor(
    private readonly sock: Socket,
    private readonly commandTimeoutMs: number,
    logPath?: string,
    closeDetail?: () => Promise<string | undefined>,
  ) {
    super();
    this.log = logPath ? createWriteStream(logPath, { flags: 'a' }) : undefined;
    this.log?.on('error', () => {});
    const log = this.log;
    this.logClosed = log ? new Promise<void>((r) => log.once('close', () => r())) : Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    // 'error' is followed by 'close': the first of the two names the reason.
    const onLost = (reason: string): void => {
      if (this.lost || this.closedReason) return;
      this.lost = true;
      if (!closeDetail) return this.close(reason);
      void closeDetail()
        .catch(() => undefined)
        .then((detail) => this.close(detail ? `${reason}; ${detail}` : reason));
    };
    sock.on('error', (e) => onLost(e.message));
    sock.on('close', () => onLost('socket closed'));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const sock = await connectWithRetry(path, opts.connectTimeoutMs ?? 10_000);
    return QmpClient.attach(sock, opts);
  }

  /** Speaks QMP on a socket that is already connected (e.g. one QEMU connected to): greeting, capabilities. */
  static async attach(sock: Socket, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const c = new QmpClient(sock, opts.commandTimeoutMs ?? 30_000, opts.logPath, opts.closeDetail);
    try {
      await c.waitGreeting(opts.connectTimeoutMs ?? 10_000);
      await c.execute('qmp_capabilities');
    } catch (e) {
      c.close('handshake failed');
      throw e;
    }
    return c;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  private record(dir: '<-' | '->', msg: unknown): void {
    this.log?.write(JSON.stringify({ t: new Date().toISOString(), dir, msg }) + '\n');
  }

  private waitGreeting(timeoutMs: number): Promise<unknown> {
    if (this.greeting !== undefined) return Promise.resolve(this.greeting);
    if (this.closedReason) return Promise.reject(new QmpClosedError(undefined, this.closedReason));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new QmpTimeoutError('(greeting)', timeoutMs)), timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => (clearTimeout(timer), resolve(g)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.record('<-', { unparsable: line });
        continue;
      }
      this.record('<-', msg);
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      this.greeting = msg.QMP;
      this.greetingWaiter?.resolve(msg.QMP);
      return;
    }
    if (typeof msg.event === 'string') {
      const ev = msg as unknown as QmpEvent;
      this.emit('event', ev);
      this.emit(ev.event, ev);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else p.resolve(msg.return);
  }

  /** Runs a QMP command; resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    if (this.closedReason) return Promise.reject(new QmpClosedError(command, this.closedReason));
    const id = `hb-${this.nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args && Object.keys(args).length > 0) msg.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.record('->', msg);
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  /** Waits for an event (arriving from now on) that satisfies `pred`. */
  waitForEvent(name: string, pred: (e: QmpEvent) => boolean = () => true, timeoutMs = this.commandTimeoutMs): Promise<QmpEvent> {
    if (this.closedReason) return Promise.reject(new QmpClosedError(`wait ${name}`, this.closedReason));
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off(name, onEv);
        this.off('close', onClose);
      };
      const onEv = (e: QmpEvent): void => {
        if (!pred(e)) return;
        cleanup();
        resolve(e);
      };
      const onClose = (reason: string): void => {
        cleanup();
        reject(new QmpClosedError(`wait ${name}`, reason));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new QmpTimeoutError(`wait for event ${name}`, timeoutMs));
      }, timeoutMs);
      this.on(name, onEv);
      this.on('close', onClose);
    });
  }

  /** All events from now on, until the connection closes or the loop breaks. */
  async *events(): AsyncGenerator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    const onEv = (e: QmpEvent): void => {
      queue.push(e);
      wake?.();
    };
    const onClose = (): void => wake?.();
    this.on('event', onEv);
    this.on('close', onClose);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as QmpEvent;
        if (this.closedReason) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('event', onEv);
      this.off('close', onClose);
    }
  }

  /** Closes the connection; pending commands fail with QmpClosedError. */
  close(reason = 'closed by client'): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.greetingWaiter?.reject(new QmpClosedError(undefined, reason));
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new QmpClosedError(p.command, reason));
    }
    this.pending.clear();
    this.sock.destroy();
    this.log?.end();
    this.emit('close', reason);
    this.closeWaiters.forEach((f) => f());
  }

  // ---- convenience -------------------------------------------------------------------------

  qomGet<T = unknown>(path: string, property: string): Promise<T> {
    return this.execute<T>('qom-get', { path, property });
  }

  qomSet(path: string, property: string, value: unknown): Promise<unknown> {
    return this.execute('qom-set', { path, property, value });
  }

  /** Sends `input-send-event` (to a specific device when given). */
  inputSendEvent(events: unknown[], device?: string): Promise<unknown> {
    return this.execute('input-send-event', device ? { device, events } : { events });
  }

  /** Runs a human monitor command; HMP reports errors as text, so a non-empty reply is returned. */
  hmp(commandLine: string, timeoutMs?: number): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, timeoutMs);
  }

  async savevm(tag: string, timeoutMs?: number): Promise<void> {
    const out = (await this.hmp(`savevm ${tag}`, timeoutMs)).trim();
    if (out) throw new QmpError('savevm', 'HmpError', out);
  }

  async loadvm(tag: string, timeoutMs?: number): Promise<void> {
    const out = (await this.hmp(`loadvm ${tag}`, timeoutMs)).trim();
    if (out) throw new QmpError('loadvm', 'HmpError', out);
  }

  /** Asks QEMU to exit. Resolves once QEMU acknowledged (or already closed the connection). */
  async quit(timeoutMs = 5000): Promise<void> {
    try {
      await this.execute('quit', undefined, timeoutMs);
    } catch (e) {
      if (!(e instanceof QmpClosedError)) throw e;
    }
  }
}
