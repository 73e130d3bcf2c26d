/**
 * `hilbox cache list|prune|clean` on a real cache directory laid out as the build scripts lay it
 * out (a temporary HILBOX_CACHE): sizes, last use from the `<entry>.last-used` stamps, the current
 * builds never pruned, bad input refused with exit 2 naming what was wrong.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCache, pruneCandidates, stampUse, stampPath } from '../../orchestrator/src/products/cache.ts';
import { runCli } from './helpers.ts';

let root: string;
const DAY = 86_400_000;
const old = new Date(Date.now() - 40 * DAY);

function file(path: string, bytes: number, mtime?: Date): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes));
  if (mtime) utimesSync(path, mtime, mtime);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hilbox-cache-test-'));
  file(join(root, 'qemu', 'aaaa', 'bin', 'qemu-system-x86_64'), 3000);
  file(stampPath(join(root, 'qemu', 'aaaa')), 0, old); // old, but current
  file(join(root, 'qemu', 'bbbb', 'bin', 'qemu-system-x86_64'), 2000);
  file(stampPath(join(root, 'qemu', 'bbbb')), 0, old); // old: pruned
  file(join(root, 'qemu', 'cccc', 'bin', 'qemu-system-x86_64'), 1000); // used now
  writeFileSync(join(root, 'qemu', 'current'), `${join(root, 'qemu', 'aaaa', 'bin', 'qemu-system-x86_64')}\n`);
  file(join(root, 'qemu', 'tree-7.2', 'src', 'x.c'), 5000);
  file(stampPath(join(root, 'qemu', 'tree-7.2')), 0, old); // a tree is never pruned
  file(join(root, 'guest', 'linux-1111', 'manifest.json'), 100);
  file(stampPath(join(root, 'guest', 'linux-1111')), 0, old);
  file(join(root, 'debs', 'busybox.deb'), 700);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the cache as entries', () => {
  it('lists every entry with its size, last use and whether it is current', () => {
    const byKey = new Map(listCache(root).map((e) => [e.key, e]));
    expect(byKey.get('aaaa')).toMatchObject({ kind: 'qemu', current: true });
    expect(byKey.get('aaaa')!.bytes).toBe(3000);
    expect(byKey.get('tree-7.2')).toMatchObject({ kind: 'qemu-tree', bytes: 5000 });
    expect(byKey.get('linux-1111')!.lastUsed.getTime()).toBe(old.getTime());
    expect(byKey.get('debs')).toMatchObject({ kind: 'debs', bytes: 700 });
  });

  it('prunes keyed builds unused for N days, never a current build or a tree', () => {
    expect(pruneCandidates(root, 30).map((e) => e.key).sort()).toEqual(['bbbb', 'linux-1111']);
    stampUse(root, join(root, 'guest', 'linux-1111', 'manifest.json')); // used again
    expect(readdirSync(join(root, 'guest', 'linux-1111'))).toEqual(['manifest.json']); // the stamp lies beside the entry
    expect(pruneCandidates(root, 30).map((e) => e.key)).toEqual(['bbbb']);
  });

  it('hilbox cache prune --dry-run lists, prune removes, clean KIND empties a kind', async () => {
    const env = { HILBOX_CACHE: root };
    const dry = await runCli(['--json', 'cache', 'prune', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as { entries: { key: string }[] }).entries.map((e) => e.key)).toEqual(['bbbb']);
    expect(existsSync(join(root, 'qemu', 'bbbb'))).toBe(true);
    const pruned = await runCli(['cache', 'prune'], env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/removed 1 entry/);
    expect(existsSync(join(root, 'qemu', 'bbbb'))).toBe(false);
    expect(existsSync(stampPath(join(root, 'qemu', 'bbbb')))).toBe(false);
    expect(existsSync(join(root, 'qemu', 'aaaa'))).toBe(true);
    const clean = await runCli(['cache', 'clean', 'debs'], env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(existsSync(join(root, 'debs'))).toBe(false);
    const list = await runCli(['cache', 'list'], env);
    expect(list.stdout).toMatch(/aaaa\s+\S+ KiB\s+\S+ \S+\s+current/);
  });

  it('refuses an unknown kind and a bad --days with exit 2 naming them', async () => {
    const env = { HILBOX_CACHE: root };
    const kind = await runCli(['cache', 'clean', 'bogus'], env);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/kind: "bogus" is not a cache kind; allowed: qemu, qemu-tree, guest/);
    const days = await runCli(['cache', 'prune', '--days', 'soon'], env);
    expect(days.code).toBe(2);
    expect(days.stderr).toMatch(/--days: "soon" is not a number of days/);
  });
});
