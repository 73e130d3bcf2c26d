/**
 * `hilbox doctor [--install]`: what is missing on this host and the exact command that fixes
 * it; with --install, installs Debian packages (as root) and runs the cached builds.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot, firmwareDirs, repoRoot } from '../../core/paths.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** The exact command that fixes it. */
  fix?: string;
}

interface HostPackages {
  [purpose: string]: string[] | string;
}

async function missingDebianPackages(pkgs: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const p of pkgs) {
    const r = await execa('dpkg-query', ['-W', '-f=${Status}', p], { reject: false });
    if (!String(r.stdout).includes('install ok installed')) missing.push(p);
  }
  return missing;
}

export async function runChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, detail: `Node ${process.versions.node} (need ≥ 20)`, fix: major >= 20 ? undefined : 'install Node.js 20' });

  const lists = JSON.parse(readFileSync(join(repoRoot, 'scripts', 'host-packages.json'), 'utf8')) as HostPackages;
  for (const [purpose, pkgs] of Object.entries(lists)) {
    if (!Array.isArray(pkgs)) continue;
    const missing = await missingDebianPackages(pkgs);
    checks.push({
      name: `packages:${purpose}`,
      ok: missing.length === 0,
      detail: missing.length ? `missing: ${missing.join(' ')}` : `${pkgs.length} Debian packages installed`,
      fix: missing.length ? `sudo apt-get install -y ${missing.join(' ')}` : undefined,
    });
  }
  for (const dir of firmwareDirs) {
    checks.push({ name: `firmware:${dir}`, ok: existsSync(dir), detail: existsSync(dir) ? 'present' : 'missing', fix: existsSync(dir) ? undefined : 'sudo apt-get install -y seabios qemu-system-data' });
  }
  const qemuCurrent = join(cacheRoot(), 'qemu', 'current');
  const qemuPath = existsSync(qemuCurrent) ? readFileSync(qemuCurrent, 'utf8').trim() : '';
  checks.push({
    name: 'qemu',
    ok: qemuPath !== '' && existsSync(qemuPath),
    detail: qemuPath && existsSync(qemuPath) ? `built: ${qemuPath} (rebuilt automatically when the device changes)` : 'QEMU with hilbox-pci not built yet',
    fix: qemuPath && existsSync(qemuPath) ? undefined : 'npm run build:qemu',
  });
  const guestDir = join(cacheRoot(), 'guest');
  const hasGuest = existsSync(guestDir);
  checks.push({ name: 'guest', ok: hasGuest, detail: hasGuest ? `guest images in ${guestDir}` : 'Linux guest image not built yet', fix: hasGuest ? undefined : 'npm run build:guest' });
  const kvm = existsSync('/dev/kvm');
  checks.push({ name: 'kvm', ok: true, detail: kvm ? '/dev/kvm present (accelerator auto probes it and falls back to TCG if it does not work)' : 'no /dev/kvm: guests run under TCG (slower, fully supported)' });
  return checks;
}

export async function installMissing(checks: Check[], log: (l: string) => void): Promise<void> {
  const pkgs = checks.filter((c) => !c.ok && c.fix?.includes('apt-get install')).flatMap((c) => c.fix!.split('install -y ')[1]!.split(' '));
  if (pkgs.length) {
    if (process.getuid?.() !== 0) throw new Error(`installing Debian packages needs root: sudo apt-get install -y ${pkgs.join(' ')}`);
    log(`apt-get install -y ${pkgs.join(' ')}`);
    await execa('apt-get', ['install', '-y', '-q', ...new Set(pkgs)], { env: { DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'inherit' });
  }
}
