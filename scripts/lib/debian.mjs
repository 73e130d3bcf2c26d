// Debian packages a build script needs on the host: which are missing, and installing them
// (as root; otherwise the exact apt-get line is printed and the script stops); and apt's
// answers kept while its package lists are unchanged. Shared by every scripts/build-*.mjs so
// the rule lives in one place.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

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

/**
 * What apt's package lists and configuration look like now: size and mtime of each place
 * `apt-cache` answers from (the downloaded lists, the sources and the pinning). An `apt-get
 * update` that fetched anything, or any edit of sources or preferences, changes it.
 */
export function aptState() {
  const places = ['/var/lib/apt/lists', '/etc/apt/sources.list', '/etc/apt/sources.list.d', '/etc/apt/preferences', '/etc/apt/preferences.d'];
  return places.map((p) => {
    try {
      const s = statSync(p);
      return `${p}:${s.size}:${s.mtimeMs}`;
    } catch {
      return `${p}:-`;
    }
  }).join(' ');
}

/**
 * `compute()`'s answer, kept in `file` for as long as aptState() is unchanged: asking apt-cache
 * costs about a second per call on a 2-core machine, and a warm build only needs to know that
 * nothing changed. A value that cannot be kept (undefined) is not stored; `store: false` only
 * reads (a command that must leave the cache as it found it).
 */
export function memoAptAnswer(file, question, compute, { store = true } = {}) {
  const state = aptState();
  let memo;
  try {
    memo = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    memo = {};
  }
  const hit = memo[question];
  if (hit && hit.state === state) return hit.answer;
  const answer = compute();
  if (answer === undefined || !store) return answer;
  memo[question] = { state: aptState(), answer }; // compute() may have run apt-get update
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(memo, null, 2));
  renameSync(`${file}.tmp`, file);
  return answer;
}
