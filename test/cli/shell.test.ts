/**
 * `hilbox shell` through a real terminal: tmux gives it a pty (it refuses a pipe), the guest's
 * prompt appears, a command runs in the guest, `exit` ends the session and the VM with it, and
 * no QEMU is left. tmux is installed by the project's own Debian helper when missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { descendants, isQemu } from './helpers.ts';

const SESSION = `hilbox-shell-test-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'hilbox-shell-test-'));
const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
const pane = (): string => tmux('capture-pane', '-p', '-t', SESSION, '-S', '-200');
const alive = (): boolean => spawnSync('tmux', ['has-session', '-t', SESSION]).status === 0;

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the terminal shows:\n${alive() ? pane() : '(session gone)'}`);
    await sleep(250);
  }
}

beforeAll(async () => {
  const { ensureDebianPackages } = (await import(join(repoRoot, 'scripts', 'lib', 'debian.mjs'))) as {
    ensureDebianPackages: (p: string[], o: { log: (l: string) => void; fail: (m: string) => never }) => void;
  };
  ensureDebianPackages(['tmux'], { log: (l) => process.stderr.write(`${l}\n`), fail: (m) => { throw new Error(m); } });
});

afterAll(() => {
  if (alive()) spawnSync('tmux', ['kill-session', '-t', SESSION]);
  rmSync(dir, { recursive: true, force: true });
});

describe('hilbox shell in a terminal', () => {
  it('shows the guest prompt, runs a command, and exit stops the VM', async () => {
    // the default scenario, in a terminal of its own
    tmux('new-session', '-d', '-s', SESSION, '-x', '200', '-y', '50', `cd ${repoRoot} && node bin/hilbox.js shell; echo "shell exit status $?"; sleep 30`);
    const panePid = Number(tmux('display-message', '-p', '-t', SESSION, '#{pane_pid}').trim());
    await until('the guest prompt', () => /exit the shell to stop the VM[\s\S]*[#$] $/m.test(pane().trimEnd() + ' '), 600_000);
    const qemus = descendants(panePid).filter(isQemu);
    expect(qemus.length, 'the shell\'s QEMU runs while it is open').toBe(1);
    tmux('send-keys', '-t', SESSION, 'echo hello-$((6*7))-from-the-guest; uname -r', 'Enter');
    await until('the command output', () => /hello-42-from-the-guest/.test(pane()), 60_000);
    expect(pane()).toMatch(/\d+\.\d+\.\d+-\d+-amd64/);
    tmux('send-keys', '-t', SESSION, 'exit', 'Enter');
    await until('the shell to end', () => /shell exit status \d+/.test(pane()), 120_000);
    expect(pane()).toMatch(/shell exit status 0/);
    await until('no QEMU left', () => qemus.every((pid) => !existsSync(`/proc/${pid}`)) && descendants(panePid).filter(isQemu).length === 0, 30_000);
  });
});
