/**
 * `hilbox image windows --iso WIN.iso [--virtio-iso virtio-win.iso] [--out disk.qcow2] [--size 40G]`
 *
 * Builds a golden Windows qcow2 from the user's installation ISO, unattended: a small answer
 * ISO (fixtures/windows/autounattend.xml filled in, provision.ps1, the SSH public key) is
 * attached next to the installation ISO, QEMU boots the installer under UEFI with Secure Boot
 * off (non-secure OVMF), Setup partitions, installs and logs on once, provision.ps1 sets up
 * OpenSSH/firewall/test signing and powers the VM off. QEMU runs through the same launcher,
 * accelerator probe and reaper as every other command (vm/machine.ts, `installer`: reboots
 * reset the VM, the power-off is the expected end). We wait for that power-off and report the
 * image, the SSH key and a scenario snippet.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { ensureGuest, ensureQemu } from '../../products/ensure.ts';
import { repoRoot } from '../../core/paths.ts';
import { WindowsGuest } from '../../guest/windows.ts';
import type { BootableGuest } from '../../vm/bootable.ts';
import { Machine } from '../../vm/machine.ts';
import { optPath } from '../../vm/qemu-args.ts';
import { UsageError } from '../errors.ts';
import type { Output } from '../output.ts';

// ssh2 is CommonJS and Node's ESM loader does not see its `utils` export: load it with require.
const sshUtils = (createRequire(import.meta.url)('ssh2') as typeof import('ssh2')).utils;

export interface ImageWindowsOptions {
  iso?: string;
  virtioIso?: string;
  out?: string;
  size?: string;
  /** SSH public key to authorize (default ~/.ssh/id_ed25519.pub, else a new key pair next to the image). */
  sshKey?: string;
  user?: string;
  /** Install image index inside install.wim (1 = first edition). */
  edition?: string;
  productKey?: string;
  memory?: string;
  cpus?: string;
  /** Give up after this many minutes (default 180). */
  timeoutMinutes?: string;
  firmware?: string;
  force?: boolean;
}

export interface ValidatedImageOptions {
  iso: string;
  virtioIso?: string;
  out: string;
  size: string;
  user: string;
  editionIndex: number;
  productKey?: string;
  memory: string;
  cpus: number;
  timeoutMs: number;
  firmwareCode: string;
  firmwareVars: string;
  sshKey?: string;
}

const SIZE = /^[1-9][0-9]*[MGT]$/;
const USER = /^[A-Za-z][A-Za-z0-9_-]{0,19}$/;
const PRODUCT_KEY = /^[A-Z0-9]{5}(?:-[A-Z0-9]{5}){4}$/;
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** Checks the command line; every problem is a UsageError naming the flag (exit 2). */
export function validateImageOptions(o: ImageWindowsOptions): ValidatedImageOptions {
  if (!o.iso) throw new UsageError('hilbox image windows: --iso is required (the Windows installation ISO you downloaded, e.g. --iso ~/Win11_Enterprise_Eval.iso)');
  const iso = resolve(o.iso);
  if (!existsSync(iso) || !statSync(iso).isFile()) throw new UsageError(`--iso ${o.iso}: no such file`);
  const virtioIso = o.virtioIso ? resolve(o.virtioIso) : undefined;
  if (virtioIso && !existsSync(virtioIso)) throw new UsageError(`--virtio-iso ${o.virtioIso}: no such file`);
  const size = o.size ?? '40G';
  if (!SIZE.test(size)) throw new UsageError(`--size ${size}: expected a size like 40G`);
  const out = resolve(o.out ?? 'windows.qcow2');
  if (existsSync(out) && !o.force) throw new UsageError(`--out ${out} already exists (remove it or pass --force)`);
  if (!existsSync(dirname(out))) throw new UsageError(`--out ${out}: directory ${dirname(out)} does not exist`);
  const user = o.user ?? 'hilbox';
  if (!USER.test(user)) throw new UsageError(`--user ${user}: letters, digits, _ and -, at most 20 characters`);
  const editionIndex = Number(o.edition ?? '1');
  if (!Number.isInteger(editionIndex) || editionIndex < 1 || editionIndex > 64) throw new UsageError(`--edition ${o.edition}: expected the install.wim image index, 1..64`);
  if (o.productKey && !PRODUCT_KEY.test(o.productKey)) throw new UsageError(`--product-key ${o.productKey}: expected XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`);
  const memory = o.memory ?? '4G';
  if (!/^[1-9][0-9]*[MG]$/.test(memory)) throw new UsageError(`--memory ${memory}: expected e.g. 4G`);
  const cpus = Number(o.cpus ?? '2');
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 16) throw new UsageError(`--cpus ${o.cpus}: expected 1..16`);
  const minutes = Number(o.timeoutMinutes ?? '180');
  if (!Number.isFinite(minutes) || minutes <= 0) throw new UsageError(`--timeout-minutes ${o.timeoutMinutes}: expected a positive number`);
  const firmwareCode = resolve(o.firmware ?? OVMF_CODE);
  if (/secboot|\.ms\.fd$/i.test(firmwareCode)) throw new UsageError(`--firmware ${firmwareCode}: a Secure Boot build; use the non-secure OVMF_CODE_4M.fd (test signing needs Secure Boot off)`);
  const firmwareVars = join(dirname(firmwareCode), basename(firmwareCode).replace('CODE', 'VARS'));
  const sshKey = o.sshKey ? resolve(o.sshKey.replace(/^~(?=\/)/, homedir())) : undefined;
  if (sshKey && !existsSync(sshKey)) throw new UsageError(`--ssh-key ${o.sshKey}: no such file (give a .pub public key)`);
  return {
    iso, out, size, user, editionIndex, memory, cpus, timeoutMs: minutes * 60_000, firmwareCode, firmwareVars,
    ...(virtioIso ? { virtioIso } : {}),
    ...(o.productKey ? { productKey: o.productKey } : {}),
    ...(sshKey ? { sshKey } : {}),
  };
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** autounattend.xml from the template with the placeholders filled in. */
export function renderAutounattend(v: { user: string; password: string; editionIndex: number; productKey?: string }): string {
  const tmpl = readFileSync(join(repoRoot, 'fixtures', 'windows', 'autounattend.xml'), 'utf8');
  const key = v.productKey ? `<ProductKey><Key>${v.productKey}</Key><WillShowUI>OnError</WillShowUI></ProductKey>` : '<!-- no product key: evaluation media or an edition that asks for none -->';
  return tmpl
    .replace(/\{\{USER\}\}/g, xmlEscape(v.user))
    .replace(/\{\{PASSWORD\}\}/g, xmlEscape(v.password))
    .replace(/\{\{IMAGE_INDEX\}\}/g, String(v.editionIndex))
    .replace(/\{\{PRODUCT_KEY\}\}/g, key);
}

async function which(cmd: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0;
}

/** Installs a Debian package as root (after `apt-get update` if the first try fails), else says how. */
async function aptInstall(pkg: string, log: (l: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new UsageError(`${pkg} is missing; run as root: apt-get install -y ${pkg}`);
  log(`installing ${pkg}`);
  const install = () => execa('apt-get', ['install', '-y', '-q', pkg], { reject: false, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  let r = await install();
  if (r.exitCode !== 0) {
    await execa('apt-get', ['update', '-q'], { reject: false });
    r = await install();
  }
  if (r.exitCode !== 0) throw new UsageError(`apt-get install -y ${pkg} failed: ${String(r.stderr).trim().split('\n').slice(-3).join(' ')}`);
}

/** Installs a Debian package when a tool is missing (root only), else says how. */
export async function ensureTool(cmd: string, pkg: string, log: (l: string) => void = () => {}): Promise<void> {
  if (!(await which(cmd))) await aptInstall(pkg, log);
}

/**
 * The answer media: an ISO 9660 + Joliet image (volume HILBOX_ANSWERS) holding
 * autounattend.xml, provision.ps1 and authorized_keys at its root. Returns its path.
 */
export async function buildAnswerMedia(dir: string, v: { user: string; password: string; editionIndex: number; productKey?: string; publicKey: string }, log?: (l: string) => void): Promise<string> {
  await ensureTool('genisoimage', 'genisoimage', log);
  const root = join(dir, 'answers');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'autounattend.xml'), renderAutounattend(v));
  // Windows PowerShell 5 reads BOM-less scripts as ANSI; CRLF line ends for good measure.
  const ps1 = readFileSync(join(repoRoot, 'fixtures', 'windows', 'provision.ps1'), 'utf8').replace(/\r?\n/g, '\r\n');
  writeFileSync(join(root, 'provision.ps1'), `\ufeff${ps1}`);
  writeFileSync(join(root, 'authorized_keys'), `${v.publicKey.trim()}\r\n`);
  const iso = join(dir, 'answers.iso');
  const r = await execa('genisoimage', ['-quiet', '-J', '-r', '-V', 'HILBOX_ANSWERS', '-o', iso, root], { reject: false });
  if (r.exitCode !== 0) throw new Error(`genisoimage failed: ${String(r.stderr).trim()}`);
  return iso;
}

/** The public key to authorize, and where its private half is (generated when none is given). */
function sshKeyPair(o: ValidatedImageOptions): { publicKey: string; privateKeyPath: string } {
  const candidates = o.sshKey ? [o.sshKey] : [join(homedir(), '.ssh', 'id_ed25519.pub')];
  for (const pub of candidates) {
    if (existsSync(pub)) return { publicKey: readFileSync(pub, 'utf8'), privateKeyPath: pub.replace(/\.pub$/, '') };
  }
  const kp = sshUtils.generateKeyPairSync('ed25519', { comment: 'hilbox-windows' });
  const priv = `${o.out}.id_ed25519`;
  writeFileSync(priv, kp.private, { mode: 0o600 });
  chmodSync(priv, 0o600);
  writeFileSync(`${priv}.pub`, `${kp.public}\n`);
  return { publicKey: kp.public, privateKeyPath: priv };
}

export interface ImageResult {
  image: string;
  user: string;
  sshKey: string;
  firmware: string;
  minutes: number;
}

export async function imageWindowsCommand(raw: ImageWindowsOptions, out: Output): Promise<ImageResult> {
  const o = validateImageOptions(raw);
  await ensureTool('genisoimage', 'genisoimage', (l) => out.progress(l));
  if (!existsSync(o.firmwareCode) || !existsSync(o.firmwareVars)) {
    if (raw.firmware) throw new UsageError(`--firmware ${o.firmwareCode}: missing (or its VARS file ${o.firmwareVars})`);
    await aptInstall('ovmf', (l) => out.progress(l));
  }
  out.step('building QEMU (cached)');
  const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
  const qemuImg = existsSync(join(dirname(qemu), 'qemu-img')) ? join(dirname(qemu), 'qemu-img') : 'qemu-img';
  const work = mkdtempSync(join(tmpdir(), 'hilbox-image-'));
  const password = `Hb-${randomBytes(9).toString('base64url')}`;
  try {
    const keys = sshKeyPair(o);
    out.step('writing the answer media (autounattend.xml, provision.ps1, authorized_keys)');
    const answers = await buildAnswerMedia(work, { user: o.user, password, editionIndex: o.editionIndex, publicKey: keys.publicKey, ...(o.productKey ? { productKey: o.productKey } : {}) }, (l) => out.progress(l));
    const partial = `${o.out}.partial`;
    rmSync(partial, { force: true });
    await execa(qemuImg, ['create', '-q', '-f', 'qcow2', partial, o.size]);
    const vars = join(work, 'efivars.fd');
    copyFileSync(o.firmwareVars, vars);
    const cd = (id: string, file: string, bus: string, extra = ''): string[] => ['-drive', `if=none,id=${id},media=cdrom,readonly=on,file=${optPath(file)}`, '-device', `ide-cd,drive=${id},bus=${bus}${extra}`];
    // The installer as the launcher sees a guest: its disks and firmware; it powers off when done.
    const installer: BootableGuest = {
      readiness: new WindowsGuest({ image: partial, sshUser: o.user }).readiness,
      crashSignatures: [],
      nicModel: 'e1000e',
      machine: { snapshotDisk: false, rng: false, bootTimeoutMs: o.timeoutMs, minMemoryBytes: 0 },
      sshTarget: (port) => ({ port, user: o.user, privateKey: keys.privateKeyPath }),
      sshGuestPort: 22,
      bootArgs: () => [
        '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optPath(o.firmwareCode)}`,
        '-drive', `if=pflash,format=raw,unit=1,file=${optPath(vars)}`,
        '-drive', `if=none,id=disk0,format=qcow2,file=${optPath(partial)}`, '-device', 'ide-hd,drive=disk0,bus=ide.0,bootindex=1',
        ...cd('cd0', o.iso, 'ide.1', ',bootindex=0'),
        ...cd('cd1', answers, 'ide.2'),
        ...(o.virtioIso ? cd('cd2', o.virtioIso, 'ide.3') : []),
        '-device', 'VGA', '-rtc', 'base=utc',
      ],
    };
    out.step('checking the accelerator');
    const probeKernel = (await ensureGuest({ onProgress: (l) => out.progress(l) })).kernel;
    const machine = await Machine.launch({
      qemu, guest: installer, installer: true, accel: 'auto', accelProbeKernel: probeKernel, memory: o.memory, cpus: o.cpus,
      consoleLogPath: `${o.out}.install-serial.log`, warn: (m) => out.warn(m),
    });
    const t0 = Date.now();
    try {
      out.step(`installing Windows from ${basename(o.iso)} (${machine.decision.accel === 'kvm' ? 'KVM' : 'TCG — this takes hours'}; the VM powers off when done)`);
      // The Windows ISO's UEFI loader waits for "press any key to boot from CD": press Enter a few times.
      void (async () => {
        for (let i = 0; i < 40 && machine.alive; i++) {
          await machine.qmp.execute('send-key', { keys: [{ type: 'qcode', data: 'ret' }] }).catch(() => undefined);
          await sleep(500);
        }
      })();
      const timer = setInterval(() => out.progress(`${Math.round((Date.now() - t0) / 60_000)} min`), 60_000);
      const r = await Promise.race([machine.exited, sleep(o.timeoutMs).then(() => 'timeout' as const)]);
      clearInterval(timer);
      if (r === 'timeout') throw new Error(`the installation did not finish within ${o.timeoutMs / 60_000} min (serial log: ${o.out}.install-serial.log); is the edition index right (--edition), does the ISO need a product key (--product-key)?`);
      const failure = machine.failure();
      if (failure || r.code !== 0) throw failure ?? new Error(`QEMU exited with ${r.code ?? r.signal} during the installation`);
    } finally {
      await machine.stop();
    }
    const written = statSync(partial).size;
    if (written < 1024 ** 3) throw new Error(`the VM powered off but only ${Math.round(written / 1024 ** 2)} MiB were written: Setup did not install (wrong --edition, a product key prompt, or the ISO did not boot)`);
    rmSync(o.out, { force: true });
    copyFileSync(partial, o.out);
    rmSync(partial, { force: true });
    const minutes = Math.round((Date.now() - t0) / 60_000);
    const result: ImageResult = { image: o.out, user: o.user, sshKey: keys.privateKeyPath, firmware: o.firmwareCode, minutes };
    writeFileSync(`${o.out}.hilbox.json`, `${JSON.stringify({ ...result, builtFrom: o.iso, builtAt: new Date().toISOString() }, null, 2)}\n`);
    out.done(`Windows image ready: ${o.out} (${minutes} min)`);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The scenario snippet that uses a built image. */
export function scenarioSnippet(r: ImageResult): string {
  return [
    'guest:',
    '  os: windows',
    `  image: ${r.image}`,
    `  firmware: ${r.firmware}`,
    '  ssh:',
    `    user: ${r.user}`,
    `    keyPath: ${r.sshKey}`,
  ].join('\n');
}
