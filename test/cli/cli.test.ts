/**
 * The `hilbox` command line as users and CI call it: documented exit codes, clear errors for
 * bad input, `exec` passing the guest command's exit code through, and no QEMU outliving the
 * command when it is interrupted with SIGINT mid-boot or mid-test.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { descendants, isQemu, runCli, startCli, waitFor } from './helpers.ts';
import { cacheRoot } from '../../orchestrator/src/core/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'hilbox-cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scenario(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('hilbox CLI', () => {
  it('rejects a bad scenario with exit 2 and names the file, the field and what is allowed', async () => {
    const p = scenario('bad.yaml', 'name: bad\ndevice:\n  fps: 0\n');
    const r = await runCli(['run', p]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml: device\.fps: 0 is out of range; allowed 1\.\.1000/);
  });

  it('rejects an unknown security case and an unknown threshold metric with exit 2, naming them, before anything boots', async () => {
    const t0 = Date.now();
    const p = scenario('unknown-case.yaml', 'name: unknown-case\nsuites:\n  security:\n    cases: [bad-ioctls, no-such-case]\n');
    const r = await runCli(['run', p, '--out', join(dir, 'unknown-case-out')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/suites\.security\.cases: unknown case no-such-case; allowed: unprivileged-open, /);
    expect(r.stderr).not.toMatch(/booting/);
    expect(existsSync(join(dir, 'unknown-case-out'))).toBe(false);
    const q = scenario('unknown-metric.yaml', 'name: unknown-metric\nthresholds:\n  events_lost: { max: 0 }\n');
    const r2 = await runCli(['run', q]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/thresholds\.events_lost: unknown metric "events_lost"; allowed metrics: /);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('rejects an unknown command with exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
  });

  it('boot-time refuses a bad --repeat with exit 2 naming it, before anything boots', async () => {
    const r = await runCli(['boot-time', '--repeat', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--repeat "0": expected a whole number from 1 to 50/);
  });

  it('boot-time refuses a bad --idle with exit 2 naming it, before anything boots', async () => {
    const r = await runCli(['boot-time', '--idle', '-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--idle "-1": expected seconds from 0 to 120/);
  });

  it('boot-time times every way the guest comes up in one run, with --kernel-args beside the cold boot and --thp twins', async () => {
    const p = scenario('bt.yaml', 'name: bt\ndevice:\n  width: 320\n  height: 240\n  mouse-rate-hz: 0\n  feed: false\n');
    const r = await runCli(['--json', 'boot-time', p, '--repeat', '1', '--kernel-args', 'loglevel=3', '--thp', '--idle', '0.1']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { idleSeconds: number; rows: { way: string; firstCommandMs: { median: number; n: number }; kinds: string[] }[] };
    expect(out.idleSeconds).toBe(0.1);
    const rows = out.rows;
    const thp = ', QEMU with transparent huge pages';
    const ways = ['first boot of the configuration (cold, stores its boot snapshot)', 'resumed from the boot snapshot', 'cold, boot snapshots off', 'cold, boot snapshots off, kernel args "loglevel=3"'];
    expect(rows.map((x) => x.way)).toEqual(ways.flatMap((w) => [w, `${w}${thp}`]));
    const kinds = [['cold, boot snapshot stored'], [expect.stringMatching(/^resumed from boot snapshot [0-9a-f]{16}$/)], ['cold'], ['cold']];
    expect(rows.map((x) => x.kinds)).toEqual(kinds.flatMap((k) => [k, k]));
    for (const x of rows) {
      expect(x.firstCommandMs.n).toBe(1);
      expect(x.firstCommandMs.median).toBeGreaterThan(0);
    }
    // Resuming skips the guest's whole boot: it is faster than booting whatever the host's speed.
    expect(rows[2]!.firstCommandMs.median).toBeLessThan(rows[4]!.firstCommandMs.median);
  });

  it('build --boot-snapshots refuses a missing scenario with exit 2 before building, and --only beside it', async () => {
    const r = await runCli(['build', '--boot-snapshots', join(dir, 'no-such.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no-such\.yaml: cannot read the scenario file/);
    expect(r.stderr).not.toMatch(/building QEMU/);
    const only = await runCli(['build', '--only', 'guest', '--boot-snapshots', join(dir, 'no-such.yaml')]);
    expect(only.code).toBe(2);
    expect(only.stderr).toMatch(/--boot-snapshots .* leave out --only/);
  });

  it("build --boot-snapshots stores a configuration's boot snapshot once; later boots of it resume", async () => {
    // A geometry no other test uses: its own snapshot key, removed again at the end.
    const p = scenario('snap.yaml', 'name: snap\ndevice:\n  width: 328\n  height: 240\n  mouse-rate-hz: 0\n  feed: false\n');
    const off = scenario('snap-off.yaml', 'name: snap-off\nbootSnapshot: false\ndevice:\n  width: 328\n  height: 240\n  mouse-rate-hz: 0\n  feed: false\n');
    let key: string | undefined;
    try {
      const first = await runCli(['build', '--boot-snapshots', p, off]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`boot snapshot: ${p}: cold, boot snapshot stored`);
      expect(first.stdout).toContain(`boot snapshot: ${off}: none (bootSnapshot: false)`);
      const again = await runCli(['--json', 'build', '--boot-snapshots', p]);
      expect(again.code, again.stderr).toBe(0);
      const outcome = (JSON.parse(again.stdout) as { bootSnapshots: { scenario: string; outcome: string }[] }).bootSnapshots[0]!.outcome;
      key = /^resumed from boot snapshot ([0-9a-f]{16})$/.exec(outcome)?.[1];
      expect(key, outcome).toBeDefined();
    } finally {
      if (key) for (const entry of [key, `${key}.last-used`]) rmSync(join(cacheRoot(), 'boot', entry), { recursive: true, force: true });
    }
  });

  it('exec runs a command in the guest with the driver loaded and exits with its exit code', async () => {
    const up = join(dir, 'hello.sh');
    writeFileSync(up, '#!/bin/sh\necho "hello from $(uname -r)"; ls /dev/hilbox0; exit 7\n');
    const p = scenario('small.yaml', 'name: small\ndevice:\n  width: 320\n  height: 240\n  mouse-rate-hz: 0\n  feed: false\n');
    const r = await runCli(['exec', '--scenario', p, '--upload', up, '--', './hello.sh']);
    expect(r.stdout).toMatch(/hello from 6\./);
    expect(r.stdout).toMatch(/\/dev\/hilbox0/);
    expect(r.code).toBe(7);
  });

  it('SIGINT mid-boot stops QEMU and exits 130', async () => {
    const p = scenario('sig.yaml', 'name: sig\ndevice:\n  width: 320\n  height: 240\n');
    const run = startCli(['run', p, '--out', join(dir, 'sig-boot')]);
    expect(await waitFor(() => /booting Linux/.test(run.output()), 240_000)).toBe(true);
    let qemu: number[] = [];
    await waitFor(() => (qemu = descendants(run.child.pid!).filter(isQemu)).length > 0, 30_000);
    expect(qemu.length).toBe(1);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code === 130 || r.signal === 'SIGINT').toBe(true);
    expect(await waitFor(() => qemu.every((q) => !isQemu(q)), 10_000)).toBe(true);
  });

  it('SIGINT mid-test stops QEMU too', async () => {
    const p = scenario('sig2.yaml', 'name: sig2\ndevice:\n  width: 320\n  height: 240\nsuites:\n  throughput:\n    enabled: false\n');
    const run = startCli(['run', p, '--out', join(dir, 'sig-test')]);
    expect(await waitFor(() => /security: /.test(run.output()), 240_000)).toBe(true);
    const qemu = descendants(run.child.pid!).filter(isQemu);
    expect(qemu.length).toBe(1);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code === 130 || r.signal === 'SIGINT').toBe(true);
    expect(await waitFor(() => qemu.every((q) => !isQemu(q)), 10_000)).toBe(true);
  });

  it('run writes results.json, junit.xml (read back by an XML parser), summary.md, console.log, qmp.log and frame.png', async () => {
    const out = join(dir, 'run-out');
    const p = scenario(
      'verify.yaml',
      'name: verify-only\ndevice:\n  width: 320\n  height: 240\n  mouse-rate-hz: 1000\nsuites:\n  throughput:\n    enabled: false\n  security:\n    enabled: true\n    cases: [write-through-mapping, bad-ioctls]\n',
    );
    const r = await runCli(['run', p, '--out', out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const f of ['results.json', 'junit.xml', 'summary.md', 'console.log', 'qmp.log', 'frame.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.schema).toBe('hilbox-results/1');
    expect(results.summary.fail).toBe(0);
    const names = results.cases.map((c: { name: string }) => c.name);
    expect(names).toEqual(expect.arrayContaining(['verify-frames', 'host-fed-events', 'generator-events', 'frame-picture', 'write-through-mapping', 'bad-ioctls']));
    const junit = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(join(out, 'junit.xml'), 'utf8'));
    expect(Number(junit.testsuites['@_tests'])).toBe(results.cases.length);
    expect(Number(junit.testsuites['@_failures'])).toBe(0);
    expect(readFileSync(join(out, 'frame.png')).subarray(1, 4).toString()).toBe('PNG');
    // Booted (the guest's ready marker) or resumed from this configuration's boot snapshot (vm/boot-snapshot.ts).
    expect(readFileSync(join(out, 'console.log'), 'utf8')).toMatch(/hilbox-guest: sshd ready|hilbox: resumed from boot snapshot/);
    expect(results.cases.find((c: { name: string }) => c.name === 'boot')?.details?.boot).toMatch(/^cold|^resumed from boot snapshot/);
  });
});
