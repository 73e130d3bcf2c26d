// Debian packages a build script needs on the host: which are missing, and installing them
// (as root; otherwise the exact apt-get line is printed and the script stops). Shared by every
// scripts/build-*.mjs so the rule lives in one place.
import { spawnSync } from 'node:child_process';

const APT_OPTS = ['-y', '-q', '-o', 'DPkg::Lock::Timeout=300'];

/** Packages of `pkgs` that dpkg does not report as installed. */
export function missingDebianPackages(pkgs) {
  if (pkgs.length === 0) return [];
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...pkgs], { encoding: 'utf8' });
  const installed = new Set(
    String(r.stdout)
      .split('\n')
      .filter((l) => l.endsWith('install ok installed'))
      .map((l) => l.split(' ')[0].split(':')[0]),
  );
  return pkgs.filter((p) => !installed.has(p));
}

function aptInstall(pkgs) {
  return spawnSync('apt-get', ['install', ...APT_OPTS, ...pkgs], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
}

/**
 * Installs what is missing of `pkgs`. `log(line)` reports progress; `fail(message)` must not
 * return (it ends the script with the message).
 */
export function ensureDebianPackages(pkgs, { log, fail }) {
  const missing = missingDebianPackages(pkgs);
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) fail(`missing Debian packages; run as root:\n  ${line}`);
  log(`installing ${missing.join(' ')}`);
  let r = aptInstall(missing);
  if (r.status !== 0) {
    // A stale package list is the usual reason on a fresh machine.
    spawnSync('apt-get', ['update', '-q', '-o', 'DPkg::Lock::Timeout=300'], { stdio: 'ignore' });
    r = aptInstall(missing);
  }
  if (r.status !== 0) fail(`${line} failed:\n${String(r.stderr).trim().split('\n').slice(-10).join('\n')}`);
}
