/**
 * A client for QEMU's qtest protocol (docs/devel/qtest.rst, softmmu/qtest.c): start QEMU with
 * `-accel qtest`, no guest code at all, and drive memory, port I/O, the virtual clock and
 * interrupt lines from Node.
 *
 * Wiring: Node listens on two unix sockets in a private temp directory; QEMU connects to both
 * as a client (`-qtest unix:PATH` and `-chardev socket,path=…` + `-mon mode=control`, the way
 * libqtest does it), so there is no connect race. No `-S`: with the qtest accelerator no vCPU
 * ever runs, and a stopped VM would also stop QEMU_CLOCK_VIRTUAL timers from firing when the
 * clock is stepped.
 *
 * Protocol: one line per command, one `OK …` / `FAIL …` / `ERR …` line per reply, plus
 * asynchronous `IRQ raise N` / `IRQ lower N` lines that QEMU emits while processing a command
 * (so they always arrive before that command's reply). Commands are queued and sent one at a
 * time.
 *
 * Lifetime: the socket files are removed as soon as QEMU has connected;
 * {@link QtestSession.close} (also `await using`) kills QEMU with SIGKILL and waits for it. As safety nets QEMU is started under `setpriv --pdeathsig SIGKILL` when
 * available (it dies with the Node process even on a crash) and every live QEMU is killed from
 * a process `exit` hook.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firmwareDirs as defaultFirmwareDirs } from '../core/paths.ts';
import { QmpClient } from '../qmp/client.ts';

export interface QtestStartOptions {
  /** Path of qemu-system-x86_64. */
  qemu: string;
  /** Extra QEMU arguments (devices, chardevs, `-m`, …). */
  args?: readonly string[];
  /** `-machine` value. Default `q35`. */
  machine?: string;
  /**
   * `-accel` value. Default `qtest` (no guest code runs). `tcg` runs real vCPUs (e.g. a tiny
   * `-bios`) while the qtest commands still work; clock_step/clock_set need `qtest`.
   */
  accel?: string;
  /** `-L` directories. Default: paths.ts `firmwareDirs`. */
  firmwareDirs?: readonly string[];
  /** Default timeout of one qtest command, ms. Default 10 000. */
  timeoutMs?: number;
  /** Time allowed for QEMU to start and connect, ms. Default 20 000. */
  startTimeoutMs?: number;
  /** Connect a QMP monitor (default true). */
  qmp?: boolean;
  /** `-qtest-log` destination (a file path). Default: $HILBOX_QTEST_LOG, else none. */
  qtestLog?: string;
  /** Environment for QEMU. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** A qtest command was answered with `FAIL`/`ERR`. */
export class QtestCommandError extends Error {
  constructor(
    readonly command: string,
    readonly reply: string,
  ) {
    super(`qtest '${command}' failed: ${reply}`);
    this.name = 'QtestCommandError';
  }
}

/** QEMU ended (or never started properly); carries its stderr. */
export class QemuExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
  ) {
    super(stderr.trim() ? `${message}\n--- QEMU stderr ---\n${stderr.trimEnd()}` : `${message} (stderr empty)`);
    this.name = 'QemuExitError';
  }
}

/** One IRQ line change reported by QEMU. */
export interface IrqChange {
  line: number;
  raised: boolean;
}

type Num = number | bigint;

const STDERR_LIMIT = 256 * 1024;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function hex(v: Num, what: string): string {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`${what}: not an integer: ${v}`);
  if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new RangeError(`${what}: out of range: ${v}`);
  return '0x' + b.toString(16);
}

/** Command-line builders for {@link QtestSession.batch}. */
export const qcmd = {
  read: (size: 1 | 2 | 4 | 8, addr: Num): string => `${{ 1: 'readb', 2: 'readw', 4: 'readl', 8: 'readq' }[size]} ${hex(addr, 'addr')}`,
  write: (size: 1 | 2 | 4 | 8, addr: Num, v: Num): string =>
    `${{ 1: 'writeb', 2: 'writew', 4: 'writel', 8: 'writeq' }[size]} ${hex(addr, 'addr')} ${hex(v, 'value')}`,
  in: (size: 1 | 2 | 4, port: number): string => `${{ 1: 'inb', 2: 'inw', 4: 'inl' }[size]} ${hex(port, 'port')}`,
  out: (size: 1 | 2 | 4, port: number, v: number): string => `${{ 1: 'outb', 2: 'outw', 4: 'outl' }[size]} ${hex(port, 'port')} ${hex(v, 'value')}`,
  clockStep: (ns: Num): string => `clock_step ${BigInt(ns).toString()}`,
} as const;

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function acceptOne(server: Server): Promise<Socket> {
  return new Promise((resolve) => server.once('connection', resolve));
}

interface QueuedCommand {
  /** One line, or several sent together (a batch). */
  lines: string[];
  timeoutMs: number;
  replies: string[];
  resolve: (replies: string[]) => void;
  reject: (e: Error) => void;
}

export class QtestSession implements AsyncDisposable {
  /** QMP client (undefined when started with `qmp: false`). */
  readonly qmp: QmpClient | undefined;
  /** Every IRQ change seen, oldest first. */
  readonly irqLog: IrqChange[] = [];
  private readonly irqLevels = new Map<number, boolean>();
  private readonly irqListeners = new Set<(c: IrqChange) => void>();

  private rxParts: string[] = [];
  private queue: QueuedCommand[] = [];
  private inFlight: (QueuedCommand & { timer: NodeJS.Timeout }) | undefined;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly sock: Socket,
    qmp: QmpClient | undefined,
    private readonly dir: string,
    private readonly servers: Server[],
    private readonly stderrBuf: { text: string },
    private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    /** The QEMU command line. */
    readonly argv: readonly string[],
    private readonly timeoutMs: number,
  ) {
    this.qmp = qmp;
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', () => {
      /* 'close' follows */
    });
    sock.on('close', () => {
      void this.exited.then(({ code, signal }) => this.fail(this.exitError(code, signal)));
      // If QEMU is still alive the socket closed for another reason; fail after a grace period.
      setTimeout(() => this.fail(new Error('qtest connection closed')), 2000).unref();
    });
    void exited.then(({ code, signal }) => this.fail(this.exitError(code, signal)));
  }

  /** Starts QEMU under qtest and connects. Rejects with {@link QemuExitError} if QEMU exits first. */
  static async start(opts: QtestStartOptions): Promise<QtestSession> {
    installExitHook();
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const dir = await mkdtemp(join(tmpdir(), 'hbqt-'));
    const qtestPath = join(dir, 'qtest.sock');
    const qmpPath = join(dir, 'qmp.sock');
    const servers: Server[] = [];
    let child: ChildProcess | undefined;
    const stderrBuf = { text: '' };
    const cleanup = async (): Promise<void> => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const s of servers) s.close();
      await rm(dir, { recursive: true, force: true });
    };
    try {
      servers.push(await listen(qtestPath));
      const wantQmp = opts.qmp ?? true;
      if (wantQmp) servers.push(await listen(qmpPath));
      const qtestConn = acceptOne(servers[0]!);
      const qmpConn = wantQmp ? acceptOne(servers[1]!) : Promise.resolve(undefined);

      const log = opts.qtestLog ?? process.env.HILBOX_QTEST_LOG ?? 'none';
      const qemuArgs = [
        ...(opts.firmwareDirs ?? defaultFirmwareDirs).flatMap((d) => ['-L', d]),
        '-machine', opts.machine ?? 'q35',
        '-accel', opts.accel ?? 'qtest',
        '-qtest', `unix:${qtestPath}`,
        '-qtest-log', log,
        ...(wantQmp ? ['-chardev', `socket,id=hbqmp,path=${qmpPath}`, '-mon', 'chardev=hbqmp,mode=control'] : []),
        '-display', 'none',
        '-nodefaults',
        '-no-user-config',
        ...(opts.args ?? []),
      ];
      const useSetpriv = existsSync('/usr/bin/setpriv');
      const [cmd, argv] = useSetpriv
        ? ['/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', opts.qemu, ...qemuArgs]]
        : [opts.qemu, qemuArgs];
      const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...(opts.env ?? process.env), QEMU_AUDIO_DRV: 'none' } });
      child = c;
      live.add(c);
      const append = (chunk: Buffer): void => {
        if (stderrBuf.text.length < STDERR_LIMIT) stderrBuf.text += chunk.toString('utf8');
      };
      c.stderr!.on('data', append);
      c.stdout!.on('data', append);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        c.once('error', (e) => {
          stderrBuf.text += `spawn failed: ${e.message}\n`;
          resolve({ code: null, signal: null });
        });
        c.once('close', (code, signal) => {
          live.delete(c);
          resolve({ code, signal });
        });
      });
      const fullArgv = [opts.qemu, ...qemuArgs];

      let startTimer: NodeJS.Timeout | undefined;
      const started = await Promise.race([
        Promise.all([qtestConn, qmpConn]),
        exited.then(({ code, signal }) => {
          throw new QemuExitError(`QEMU exited during start-up (${describeExit(code, signal)}): ${fullArgv.join(' ')}`, code, signal, stderrBuf.text);
        }),
        new Promise<never>((_, reject) => {
          startTimer = setTimeout(
            () => reject(new QemuExitError(`QEMU did not connect within ${opts.startTimeoutMs ?? 20_000} ms: ${fullArgv.join(' ')}`, null, null, stderrBuf.text)),
            opts.startTimeoutMs ?? 20_000,
          );
        }),
      ]).finally(() => clearTimeout(startTimer));
      const [qtestSock, qmpSock] = started;
      // Both ends are connected: the sockets' names are no longer needed. Removing them now
      // (as libqtest does) leaves nothing behind even if this process is killed later.
      for (const s of servers) s.close();
      await rm(dir, { recursive: true, force: true });
      // The same QMP client as the orchestrator's (qmp/client.ts), on the socket QEMU connected to.
      // A handshake that fails because QEMU is exiting reports QEMU's exit (with its stderr).
      const qmp = qmpSock
        ? await QmpClient.attach(qmpSock, { commandTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, closeDetail: () => exitDetail(exited, stderrBuf) }).catch(async (e: unknown) => {
            const ex = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
            if (ex) throw new QemuExitError(`QEMU exited during start-up (${describeExit(ex.code, ex.signal)})`, ex.code, ex.signal, stderrBuf.text);
            throw e;
          })
        : undefined;
      const session = new QtestSession(c, qtestSock, qmp, dir, servers, stderrBuf, exited, fullArgv, timeoutMs);
      try {
        // Round trip to prove the qtest channel works (and wait out any start-up failure).
        await session.command('endianness');
      } catch (e) {
        await session.close();
        throw e;
      }
      return session;
    } catch (e) {
      await cleanup();
      throw e;
    }
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Everything QEMU wrote to stderr/stdout so far (capped at 256 KiB). */
  get stderr(): string {
    return this.stderrBuf.text;
  }

  /** True while QEMU runs and the session is usable. */
  get alive(): boolean {
    return !this.failure && this.child.exitCode === null && this.child.signalCode === null;
  }

  // ------------------------------------------------------------------------------------------
  // Raw commands

  /**
   * Sends one command line and resolves with the text after `OK` (trimmed, may be empty).
   * Rejects with {@link QtestCommandError} on `FAIL`/`ERR`, on timeout (the session is then
   * unusable) or when QEMU exits.
   */
  async command(line: string, timeoutMs = this.timeoutMs): Promise<string> {
    const [reply] = await this.enqueue([line], timeoutMs);
    return reply!;
  }

  /**
   * Sends several command lines in one write and resolves with their replies (text after
   * `OK`) in order. QEMU still executes them one after the other; this only saves round trips.
   * If any reply is `FAIL`/`ERR`, rejects with the first such {@link QtestCommandError} after
   * all replies have arrived (the session stays in sync).
   */
  async batch(lines: readonly string[], timeoutMs?: number): Promise<string[]> {
    const out: string[] = [];
    const CHUNK = 4096;
    for (let i = 0; i < lines.length; i += CHUNK) {
      const part = lines.slice(i, i + CHUNK);
      out.push(...(await this.enqueue(part, timeoutMs ?? this.timeoutMs + part.length)));
    }
    return out;
  }

  private enqueue(lines: string[], timeoutMs: number): Promise<string[]> {
    for (const l of lines) if (l.includes('\n') || l === '') throw new Error(`qtest command must be one non-empty line: ${JSON.stringify(l)}`);
    if (this.failure) return Promise.reject(this.failure);
    if (lines.length === 0) return Promise.resolve([]);
    return new Promise<string[]>((resolve, reject) => {
      this.queue.push({ lines, timeoutMs, replies: [], resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inFlight || this.failure) return;
    const next = this.queue.shift();
    if (!next) return;
    const timer = setTimeout(() => {
      this.fail(new Error(`qtest '${next.lines[0]!.slice(0, 80)}'${next.lines.length > 1 ? ` (+${next.lines.length - 1} more)` : ''}: no reply within ${next.timeoutMs} ms; session abandoned`));
    }, next.timeoutMs);
    this.inFlight = { ...next, timer };
    this.sock.write(next.lines.join('\n') + '\n');
  }

  private onData(chunk: string): void {
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl >= 0) {
      this.rxParts.push(chunk.slice(start, nl));
      const line = this.rxParts.join('');
      this.rxParts = [];
      this.onLine(line);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) this.rxParts.push(chunk.slice(start));
  }

  private onLine(line: string): void {
    if (line.startsWith('IRQ ')) {
      const m = /^IRQ (raise|lower) (\d+)$/.exec(line);
      if (m) {
        const change: IrqChange = { line: Number(m[2]), raised: m[1] === 'raise' };
        this.irqLevels.set(change.line, change.raised);
        this.irqLog.push(change);
        for (const l of this.irqListeners) l(change);
      }
      return;
    }
    const cmd = this.inFlight;
    if (!cmd) {
      this.fail(new Error(`qtest: unexpected line from QEMU: ${line.slice(0, 200)}`));
      return;
    }
    cmd.replies.push(line);
    if (cmd.replies.length < cmd.lines.length) return;
    this.inFlight = undefined;
    clearTimeout(cmd.timer);
    const bad = cmd.replies.findIndex((r) => !(r === 'OK' || r.startsWith('OK ')));
    if (bad >= 0) cmd.reject(new QtestCommandError(cmd.lines[bad]!, cmd.replies[bad]!));
    else cmd.resolve(cmd.replies.map((r) => r.slice(2).trim()));
    this.pump();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.inFlight) {
      clearTimeout(this.inFlight.timer);
      this.inFlight.reject(err);
      this.inFlight = undefined;
    }
    for (const q of this.queue.splice(0)) q.reject(err);
  }

  private exitError(code: number | null, signal: NodeJS.Signals | null): Error {
    if (this.closing) return new Error('qtest session closed');
    return new QemuExitError(`QEMU exited (${describeExit(code, signal)})`, code, signal, this.stderrBuf.text);
  }

  // ------------------------------------------------------------------------------------------
  // Memory and I/O

  async readb(addr: Num): Promise<number> {
    return Number(await this.command(`readb ${hex(addr, 'addr')}`));
  }
  async readw(addr: Num): Promise<number> {
    return Number(await this.command(`readw ${hex(addr, 'addr')}`));
  }
  async readl(addr: Num): Promise<number> {
    return Number(await this.command(`readl ${hex(addr, 'addr')}`));
  }
  async readq(addr: Num): Promise<bigint> {
    return BigInt(await this.command(`readq ${hex(addr, 'addr')}`));
  }
  /** Read of 1, 2, 4 or 8 bytes as a bigint. */
  async readN(size: 1 | 2 | 4 | 8, addr: Num): Promise<bigint> {
    const op = { 1: 'readb', 2: 'readw', 4: 'readl', 8: 'readq' }[size];
    return BigInt(await this.command(`${op} ${hex(addr, 'addr')}`));
  }
  async writeb(addr: Num, v: Num): Promise<void> {
    await this.command(`writeb ${hex(addr, 'addr')} ${hex(v, 'value')}`);
  }
  async writew(addr: Num, v: Num): Promise<void> {
    await this.command(`writew ${hex(addr, 'addr')} ${hex(v, 'value')}`);
  }
  async writel(addr: Num, v: Num): Promise<void> {
    await this.command(`writel ${hex(addr, 'addr')} ${hex(v, 'value')}`);
  }
  async writeq(addr: Num, v: Num): Promise<void> {
    await this.command(`writeq ${hex(addr, 'addr')} ${hex(v, 'value')}`);
  }
  /** Write of 1, 2, 4 or 8 bytes. */
  async writeN(size: 1 | 2 | 4 | 8, addr: Num, v: Num): Promise<void> {
    const op = { 1: 'writeb', 2: 'writew', 4: 'writel', 8: 'writeq' }[size];
    await this.command(`${op} ${hex(addr, 'addr')} ${hex(v, 'value')}`);
  }

  async inb(port: number): Promise<number> {
    return Number(await this.command(`inb ${hex(port, 'port')}`));
  }
  async inw(port: number): Promise<number> {
    return Number(await this.command(`inw ${hex(port, 'port')}`));
  }
  async inl(port: number): Promise<number> {
    return Number(await this.command(`inl ${hex(port, 'port')}`));
  }
  async outb(port: number, v: number): Promise<void> {
    await this.command(`outb ${hex(port, 'port')} ${hex(v, 'value')}`);
  }
  async outw(port: number, v: number): Promise<void> {
    await this.command(`outw ${hex(port, 'port')} ${hex(v, 'value')}`);
  }
  async outl(port: number, v: number): Promise<void> {
    await this.command(`outl ${hex(port, 'port')} ${hex(v, 'value')}`);
  }

  /** `read ADDR SIZE` (hex dump). */
  async read(addr: Num, size: number): Promise<Buffer> {
    if (size === 0) return Buffer.alloc(0); // QEMU asserts on 0
    const reply = await this.command(`read ${hex(addr, 'addr')} ${hex(size, 'size')}`);
    if (!reply.startsWith('0x')) throw new Error(`qtest read: malformed reply ${reply.slice(0, 40)}`);
    const buf = Buffer.from(reply.slice(2), 'hex');
    if (buf.length !== size) throw new Error(`qtest read: got ${buf.length} bytes, wanted ${size}`);
    return buf;
  }
  /** `b64read ADDR SIZE`: faster for large ranges. */
  async b64read(addr: Num, size: number): Promise<Buffer> {
    if (size === 0) return Buffer.alloc(0);
    const buf = Buffer.from(await this.command(`b64read ${hex(addr, 'addr')} ${hex(size, 'size')}`, Math.max(this.timeoutMs, size / 10_000)), 'base64');
    if (buf.length !== size) throw new Error(`qtest b64read: got ${buf.length} bytes, wanted ${size}`);
    return buf;
  }
  /** `write ADDR SIZE 0xDATA` (one memory transaction of the whole buffer). */
  async write(addr: Num, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    await this.command(`write ${hex(addr, 'addr')} ${hex(data.length, 'size')} 0x${Buffer.from(data).toString('hex')}`);
  }
  /** `b64write ADDR SIZE DATA`. */
  async b64write(addr: Num, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    await this.command(`b64write ${hex(addr, 'addr')} ${hex(data.length, 'size')} ${Buffer.from(data).toString('base64')}`);
  }
  /** `memset ADDR SIZE BYTE`. */
  async memset(addr: Num, size: number, byte: number): Promise<void> {
    await this.command(`memset ${hex(addr, 'addr')} ${hex(size, 'size')} ${hex(byte & 0xff, 'value')}`);
  }

  // ------------------------------------------------------------------------------------------
  // Virtual clock

  /** Advances QEMU_CLOCK_VIRTUAL by `ns` (or to the next timer deadline); returns the new clock. */
  async clockStep(ns?: Num): Promise<bigint> {
    return BigInt(await this.command(ns === undefined ? 'clock_step' : `clock_step ${BigInt(ns).toString()}`));
  }
  /** Advances QEMU_CLOCK_VIRTUAL to `ns` (no-op if already past); returns the new clock. */
  async clockSet(ns: Num): Promise<bigint> {
    return BigInt(await this.command(`clock_set ${BigInt(ns).toString()}`));
  }
  /** The current virtual clock (a zero step). */
  async clock(): Promise<bigint> {
    return this.clockStep(0);
  }

  // ------------------------------------------------------------------------------------------
  // Interrupts

  /** Intercepts the gpio-in lines of the device at `qomPath` (e.g. `ioapic`). Only one device per QEMU. */
  async irqInterceptIn(qomPath: string): Promise<void> {
    await this.command(`irq_intercept_in ${qomPath}`);
  }
  /** Intercepts the gpio-out lines of the device at `qomPath`. */
  async irqInterceptOut(qomPath: string): Promise<void> {
    await this.command(`irq_intercept_out ${qomPath}`);
  }
  /** `set_irq_in QOM-PATH NAME NUM LEVEL`. */
  async setIrqIn(qomPath: string, name: string, num: number, level: number): Promise<void> {
    await this.command(`set_irq_in ${qomPath} ${name} ${num} ${level}`);
  }
  /** Level of an intercepted line as last reported (false if never reported). */
  irqRaised(line: number): boolean {
    return this.irqLevels.get(line) ?? false;
  }
  /** Subscribes to IRQ changes; returns an unsubscribe function. */
  onIrq(listener: (c: IrqChange) => void): () => void {
    this.irqListeners.add(listener);
    return () => this.irqListeners.delete(listener);
  }

  // ------------------------------------------------------------------------------------------
  // Shutdown

  /** Kills QEMU (SIGKILL), waits for it, closes sockets and removes the temp directory. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.fail(new Error('qtest session closed'));
      this.qmp?.close();
      this.sock.destroy();
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
      await this.exited;
      for (const s of this.servers) s.close();
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** How QEMU ended, if it did within 2 s, with the end of its stderr (a lost QMP connection's detail). */
async function exitDetail(exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, stderrBuf: { text: string }): Promise<string | undefined> {
  const ex = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
  const tail = stderrBuf.text.trim().split('\n').slice(-10).join(' | ');
  if (!ex) return tail ? `QEMU still running; its stderr ends: ${tail}` : 'QEMU still running';
  return `QEMU exited (${describeExit(ex.code, ex.signal)})${tail ? `; its stderr ends: ${tail}` : ''}`;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}
