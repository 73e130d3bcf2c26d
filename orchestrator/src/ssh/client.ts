/**
 * SSH to the guest (ssh2). One job: a reliable command channel — connect with retries until a
 * deadline, run commands with timeouts and streaming, copy files both ways (SFTP, or `cat` when the
 * guest has no SFTP subsystem) and bridge an interactive shell.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { TimeoutError } from '../core/errors.ts';

export interface SshTarget {
  host?: string;
  port: number;
  user: string;
  /** Private key (OpenSSH format) or the path of one ('' with `password`: no key). */
  privateKey: string | Buffer;
  /** Password authentication (Windows guests configured with guest.ssh.password). */
  password?: string;
  /** "SHA256:<base64>" of the guest host key; when set, any other key is refused. */
  hostKeyFingerprint?: string;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export class SshExecError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    super(
      `guest command failed (exit ${result.code ?? result.signal}): ${command}` +
        (result.stderr.trim() ? `\n${result.stderr.trim().split('\n').slice(-20).join('\n')}` : ''),
    );
    this.name = 'SshExecError';
  }
}

/** OpenSSH-style fingerprint of a raw public key blob. */
export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

async function loadKey(k: string | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(k)) return k;
  if (k.includes('PRIVATE KEY')) return Buffer.from(k);
  return readFile(k);
}

function connectOnce(cfg: ConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    // ssh2 may emit several errors for one failed attempt (a ready timeout, then the lost
    // connection): every one must have a listener, the first decides.
    const onError = (e: Error): void => {
      c.end();
      reject(e);
    };
    c.once('ready', () => {
      c.removeListener('error', onError);
      c.on('error', () => {});
      resolve(c);
    });
    c.on('error', onError);
    c.once('close', () => reject(new Error('connection closed before authentication')));
    c.connect(cfg);
  });
}

export class SshClient {
  private closed = false;
  private sftpPromise: Promise<SFTPWrapper | undefined> | undefined;

  private constructor(
    private readonly conn: Client,
    readonly target: SshTarget,
  ) {
    conn.on('close', () => (this.closed = true));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Connects, retrying (the guest may still be starting sshd) until `deadlineMs` from now. */
  static async connect(target: SshTarget, deadlineMs = 30_000, signal?: AbortSignal): Promise<SshClient> {
    const key = target.password !== undefined && !target.privateKey ? undefined : await loadKey(target.privateKey);
    const deadline = Date.now() + deadlineMs;
    let last: unknown;
    let attempt = 0;
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      attempt++;
      const remaining = Math.max(1000, deadline - Date.now());
      try {
        const conn = await connectOnce({
          host: target.host ?? '127.0.0.1',
          port: target.port,
          username: target.user,
          ...(key ? { privateKey: key } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          readyTimeout: Math.min(remaining, 15_000),
          keepaliveInterval: 5000,
          keepaliveCountMax: 6,
          hostVerifier: target.hostKeyFingerprint
            ? (k: Buffer) => fingerprint(k) === target.hostKeyFingerprint
            : () => true,
        });
        return new SshClient(conn, target);
      } catch (e) {
        last = e;
        if (/authentication methods failed|host key|verification failed/i.test(String((e as Error).message))) break;
        await sleep(Math.min(500, 100 * attempt));
      }
    }
    throw new TimeoutError(`SSH to 127.0.0.1:${target.port} (${(last as Error | undefined)?.message ?? 'no attempt'})`, deadlineMs, {
      cause: last,
    });
  }

  /** Runs a command; resolves with its exit status (non-zero is not an error here). */
  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('SSH connection is closed'));
      this.conn.exec(command, (err, stream) => {
        if (err) return reject(err);
        let stdout = '';
        let stderr = '';
        let timer: NodeJS.Timeout | undefined;
        const onConnClose = (): void => finishErr(new Error(`SSH connection closed while running: ${command}`));
        const finish = (r: ExecResult): void => {
          if (timer) clearTimeout(timer);
          this.conn.removeListener('close', onConnClose);
          resolve(r);
        };
        const finishErr = (e: Error): void => {
          if (timer) clearTimeout(timer);
          this.conn.removeListener('close', onConnClose);
          reject(e);
        };
        this.conn.once('close', onConnClose);
        if (opts.timeoutMs) {
          timer = setTimeout(() => {
            stream.signal?.('KILL');
            stream.close();
            finishErr(new TimeoutError(`guest command ${JSON.stringify(command)}`, opts.timeoutMs ?? 0));
          }, opts.timeoutMs);
        }
        stream.setEncoding('utf8');
        stream.stderr.setEncoding('utf8');
        stream.on('data', (d: string) => {
          stdout += d;
          opts.onStdout?.(d);
        });
        stream.stderr.on('data', (d: string) => {
          stderr += d;
          opts.onStderr?.(d);
        });
        stream.on('close', (code: number | null, sig: string | null) =>
          finish({ code: code ?? null, signal: sig ?? null, stdout, stderr }),
        );
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /** Like exec but throws SshExecError unless the command exits 0. */
  async run(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) throw new SshExecError(command, r);
    return r;
  }

  private sftp(): Promise<SFTPWrapper | undefined> {
    this.sftpPromise ??= new Promise((resolve) => {
      this.conn.sftp((err, s) => resolve(err ? undefined : s));
    });
    return this.sftpPromise;
  }

  /** Copies a local file to the guest and sets its mode. */
  async upload(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    if (sftp) {
      await new Promise<void>((resolve, reject) =>
        sftp.fastPut(localPath, remotePath, { mode }, (err) => (err ? reject(err) : resolve())),
      );
      await new Promise<void>((resolve, reject) => sftp.chmod(remotePath, mode, (err) => (err ? reject(err) : resolve())));
      return;
    }
    // No SFTP subsystem: stream the file into `cat`.
    const q = shellQuote(remotePath);
    const size = (await stat(localPath)).size;
    await new Promise<void>((resolve, reject) => {
      this.conn.exec(`cat > ${q} && chmod ${mode.toString(8)} ${q}`, (err, stream: ClientChannel) => {
        if (err) return reject(err);
        let stderr = '';
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        stream.on('data', () => {});
        stream.on('close', (code: number | null) =>
          code === 0 ? resolve() : reject(new Error(`upload of ${localPath} (${size} bytes) failed: ${stderr.trim()}`)),
        );
        createReadStream(localPath).pipe(stream);
      });
    });
  }

  /** Copies a guest file to the host (SFTP, else streamed out of `cat`). */
  async download(remotePath: string, localPath: string): Promise<void> {
    const sftp = await this.sftp();
    if (sftp) {
      await new Promise<void>((resolve, reject) => sftp.fastGet(remotePath, localPath, (err) => (err ? reject(new Error(`download of ${remotePath}: ${err.message}`)) : resolve())));
      return;
    }
    const r = await new Promise<Buffer>((resolve, reject) => {
      this.conn.exec(`cat ${shellQuote(remotePath)}`, (err, stream: ClientChannel) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        let stderr = '';
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        stream.on('data', (d: Buffer) => chunks.push(d));
        stream.on('close', (code: number | null) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`download of ${remotePath} failed: ${stderr.trim()}`))));
      });
    });
    await writeFile(localPath, r);
  }

  /** Interactive shell on a pty, bridged to this process's terminal; resolves with the exit code. */
  shell(io: { stdin?: NodeJS.ReadStream; stdout?: NodeJS.WriteStream } = {}): Promise<number | null> {
    const input = io.stdin ?? process.stdin;
    const output = io.stdout ?? process.stdout;
    return new Promise((resolve, reject) => {
      this.conn.shell(
        { term: process.env.TERM ?? 'xterm', rows: output.rows ?? 24, cols: output.columns ?? 80 },
        (err, stream) => {
          if (err) return reject(err);
          const wasRaw = input.isTTY ? input.isRaw : false;
          if (input.isTTY) input.setRawMode(true);
          const onResize = (): void => stream.setWindow(output.rows ?? 24, output.columns ?? 80, 0, 0);
          output.on('resize', onResize);
          input.pipe(stream);
          stream.pipe(output, { end: false });
          stream.stderr.pipe(process.stderr, { end: false });
          let code: number | null = null;
          stream.on('exit', (c: number | null) => (code = c));
          stream.on('close', () => {
            input.unpipe(stream);
            output.off('resize', onResize);
            if (input.isTTY) input.setRawMode(wasRaw);
            input.pause();
            resolve(code);
          });
          input.resume();
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    this.conn.end();
  }
}

/** Single-quotes a string for the guest's POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
