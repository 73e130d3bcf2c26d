/**
 * Scaling out, with the real CLI, QEMU and guests: bad --shard / -j refused before anything
 * boots; `hilbox matrix -j 2` runs two VMs of two scenarios at the same time on this machine
 * (seen as two live QEMU children, each on its own SSH port) and writes one report; the shards
 * of a run (`run --shard K/N`) merged by `hilbox merge` report exactly the matrix's cases, none
 * twice; shards that do not belong together are refused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import type { RunResults } from '../../orchestrator/src/report/results.ts';
import { descendants, isQemu, runCli, startCli, waitFor } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'hilbox-scale-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scenario(name: string, text: string): string {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, `name: ${name}\n${text}`);
  return p;
}

const small = (fbMode: string) => `device:\n  width: 320\n  height: 240\n  fb-mode: ${fbMode}\n  mouse-rate-hz: 1000\nsuites:\n  verify:\n    frames: 3\n  throughput:\n    enabled: false\n  security:\n    enabled: true\n    cases: [unprivileged-open, bad-ioctls]\n  robustness:\n    enabled: false\n`;
const a = scenario('small-a', small('direct'));
const b = scenario('small-b', small('mmio'));
const read = (d: string): RunResults => JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')) as RunResults;
const ids = (r: RunResults) => r.cases.filter((c) => c.suite !== 'run').map((c) => `${c.scenario ?? r.scenario}/${c.suite}/${c.name}`);

describe('bad scale-out arguments are refused before anything boots', () => {
  it.each([['0/2'], ['3/2'], ['2'], ['a/b'], ['1/0']])('run --shard %s: exit 2 naming --shard, nothing written', async (spec) => {
    const out = join(dir, `bad-shard-${spec.replace('/', '-')}`);
    const r = await runCli(['run', a, '--shard', spec, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--shard .*allowed: K\/N with 1 <= K <= N/);
    expect(r.stderr).not.toMatch(/booting/);
    expect(existsSync(out)).toBe(false);
  });

  it('matrix -j 0 and two scenarios with one name: exit 2', async () => {
    const j = await runCli(['matrix', a, b, '-j', '0']);
    expect(j.code).toBe(2);
    expect(j.stderr).toMatch(/-j "0": allowed: a whole number of VMs, 1\.\.16/);
    const twin = join(dir, 'twin');
    cpSync(a, `${twin}.yaml`);
    const n = await runCli(['matrix', a, `${twin}.yaml`, '-j', '2', '--out', join(dir, 'twin-out')]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/scenario name "small-a" is used by .*small-a\.yaml and .*twin\.yaml/);
    expect(existsSync(join(dir, 'twin-out'))).toBe(false);
  });
});

describe('matrix, shards and merge on real VMs', () => {
  const matrixOut = join(dir, 'matrix');

  it('matrix -j 2 runs two VMs side by side and writes one report', async () => {
    const run = startCli(['matrix', a, b, '-j', '2', '--out', matrixOut]);
    // Watch the command's QEMU children: both scenarios' VMs must be alive at the same time.
    let most = 0;
    const seen = new Set<number>();
    const watch = setInterval(() => {
      const q = descendants(run.child.pid!).filter(isQemu);
      for (const p of q) seen.add(p);
      most = Math.max(most, q.length);
    }, 200);
    const r = await run.done;
    clearInterval(watch);
    expect(r.code, r.stderr).toBe(0);
    expect(most).toBe(2);
    expect(seen.size).toBeGreaterThanOrEqual(2);
    expect([...seen].every((p) => !isQemu(p))).toBe(true); // none outlives the command
    // Builds once, before the VMs; each VM its own SSH port.
    const out = r.stdout + r.stderr;
    expect(out.indexOf('builds ready')).toBeLessThan(out.indexOf('booting'));
    expect(out.slice(out.indexOf('builds ready'))).not.toMatch(/building QEMU|preparing the/); // no build step twice
    const ports = [...out.matchAll(/\[(small-[ab])\] done: guest up \(\w+, ssh port (\d+)\)/g)].map((m) => [m[1], m[2]]);
    expect(new Set(ports.map((p) => p[0])).size).toBe(2);
    expect(new Set(ports.map((p) => p[1])).size).toBe(2);
    // One combined report, and each scenario's own artifacts.
    const res = read(matrixOut);
    expect(res.scenarios?.map((s) => s.name)).toEqual(['small-a', 'small-b']);
    expect(res.summary.fail).toBe(0);
    for (const s of ['small-a', 'small-b']) {
      expect(res.cases.filter((c) => c.scenario === s && c.suite === 'verify').length).toBeGreaterThan(3);
      expect(existsSync(join(matrixOut, s, 'console.log'))).toBe(true);
      expect(read(join(matrixOut, s)).scenario).toBe(s);
    }
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(join(matrixOut, 'junit.xml'), 'utf8'));
    const suites = [xml.testsuites.testsuite].flat().map((t: Record<string, string>) => t['@_name']);
    expect(suites).toEqual(expect.arrayContaining(['small-a/verify', 'small-b/verify', 'small-a/security', 'small-b/security']));
  }, 600_000);

  it('SIGINT stops every VM of a matrix and exits 130', async () => {
    const run = startCli(['matrix', a, b, '-j', '2', '--out', join(dir, 'matrix-sigint')]);
    let qemu: number[] = [];
    expect(await waitFor(() => (qemu = descendants(run.child.pid!).filter(isQemu)).length === 2, 240_000)).toBe(true);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code === 130 || r.signal === 'SIGINT').toBe(true);
    expect(await waitFor(() => qemu.every((q) => !isQemu(q)), 10_000)).toBe(true);
  }, 300_000);

  it('the shards of a run, merged, report exactly the matrix\'s cases; other shards are refused', async () => {
    const shardDirs = [1, 2, 3].map((k) => join(dir, `shard-${k}`));
    for (const [i, d] of shardDirs.entries()) {
      const r = await runCli(['run', a, b, '--shard', `${i + 1}/3`, '--out', d]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`shard ${i + 1}/3: \\d+ of \\d+ cases`));
      expect(read(d).shard?.index).toBe(i + 1);
    }
    // --dry-run names the very cases the shard ran, without booting.
    const dry = await runCli(['run', a, b, '--shard', '2/3', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^N=3: slowest shard [\d.]+ min/m);
    expect(dry.stdout.split('shard 2/3 runs:\n')[1]!.trim().split('\n').map((l) => l.trim().replace(/ \(skip\)$/, ''))).toEqual(ids(read(shardDirs[1]!)));
    // No case twice, none lost: the shards' union is the unsharded run.
    const all = shardDirs.flatMap((d) => ids(read(d)));
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(ids(read(matrixOut)).sort());

    const merged = join(dir, 'merged');
    const m = await runCli(['merge', ...shardDirs, '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(/Shards\n/);
    const res = read(merged);
    expect(ids(res)).toEqual(ids(read(matrixOut))); // and in plan order
    expect(res.merged?.missing).toEqual([]);
    expect(res.cases.filter((c) => c.suite === 'run').map((c) => c.name).sort()).toEqual(expect.arrayContaining([expect.stringMatching(/^boot-shard-\d-of-3$/)]));

    // A shard given twice, and a shard of another run: exit 2, naming them; nothing written.
    const twice = await runCli(['merge', shardDirs[0]!, shardDirs[0]!, '--out', join(dir, 'm2')]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/shard 1\/3 given twice/);
    const other = join(dir, 'other-shard');
    const o = await runCli(['run', a, '--shard', '1/1', '--out', other]);
    expect(o.code, o.stderr).toBe(0);
    const mismatch = await runCli(['merge', shardDirs[0]!, other, '--out', join(dir, 'm3')]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/is not a shard of the same run/);
    expect(existsSync(join(dir, 'm2')) || existsSync(join(dir, 'm3'))).toBe(false);

    // A missing shard: the merged report still comes out, its cases fail, exit 1.
    const partial = await runCli(['merge', shardDirs[0]!, shardDirs[2]!, '--out', join(dir, 'm4')]);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(/missing shard 2\/3/);
    expect(read(join(dir, 'm4')).cases.some((c) => c.status === 'fail' && /no results for shard 2\/3/.test(c.reason ?? ''))).toBe(true);
  }, 900_000);
});
