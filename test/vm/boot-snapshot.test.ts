/**
 * Boot snapshots (vm/boot-snapshot.ts): the key, and real VMs that store one on their first boot,
 * resume it on the next, get their own randomness and clock, and fall back to a cold boot when
 * the stored state is broken.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import { normalizedArgs, removeStaleTemps, saveUri, shellWord, snapshotKey, snapshotPaths, tempStatePath } from '../../orchestrator/src/vm/boot-snapshot.ts';
import { RESUMED_LINE } from '../../orchestrator/src/vm/machine.ts';
import { hasHilboxDevice, linuxGuest, qemuPath } from './helpers.ts';

describe('boot snapshot key', () => {
  const args = ['-name', 'vm-a', '-m', '512M', '-chardev', 'socket,id=qmp0,path=/tmp/hilbox-vm-abc/qmp-0.sock,server=on,wait=off', '-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:40001-:22', '-device', 'hilbox-pci,id=hb0,bus=rp0,fps=50'];

  it('ignores what differs from run to run (run directory, forwarded port, name)', () => {
    const other = args.map((a) => a.replace('/tmp/hilbox-vm-abc', '/tmp/hilbox-vm-xyz').replace('qmp-0', 'qmp-1').replace('40001', '40999').replace('vm-a', 'vm-b'));
    expect(snapshotKey('/nonexistent/qemu', other, '/tmp/hilbox-vm-xyz', 40999)).toBe(snapshotKey('/nonexistent/qemu', args, '/tmp/hilbox-vm-abc', 40001));
    expect(normalizedArgs(args, '/tmp/hilbox-vm-abc', 40001)).toEqual([
      '-m',
      '512M',
      '-chardev',
      'socket,id=qmp0,path=<run>/qmp.sock,server=on,wait=off',
      '-netdev',
      'user,id=net0,hostfwd=tcp:127.0.0.1:<port>-:22',
      '-device',
      'hilbox-pci,id=hb0,bus=rp0,fps=50',
    ]);
  });

  it('changes with a device property, the memory or the QEMU binary', () => {
    const k = snapshotKey('/nonexistent/qemu', args, '/tmp/hilbox-vm-abc', 40001);
    expect(snapshotKey('/nonexistent/qemu', args.map((a) => a.replace('fps=50', 'fps=25')), '/tmp/hilbox-vm-abc', 40001)).not.toBe(k);
    expect(snapshotKey('/nonexistent/qemu', args.map((a) => a.replace('512M', '1G')), '/tmp/hilbox-vm-abc', 40001)).not.toBe(k);
    expect(snapshotKey('/nonexistent/qemu2', args, '/tmp/hilbox-vm-abc', 40001)).not.toBe(k);
  });

  it('removes temporary states of processes that are gone, not of living ones', () => {
    const d = mkdtempSync(join(tmpdir(), 'hilbox-snap-tmp-'));
    try {
      const p = snapshotPaths(d, 'k');
      const dead = tempStatePath(p, 2 ** 22 + 17, 'ab12').replace(`${d}/k/`, `${d}/`);
      const living = tempStatePath(p, process.pid, 'cd34').replace(`${d}/k/`, `${d}/`);
      writeFileSync(dead, 'x');
      writeFileSync(living, 'x');
      removeStaleTemps(d);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(living)).toBe(true);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses a store path the snapshot command could not quote', () => {
    expect(() => shellWord("/tmp/it's")).toThrow(/single quote/);
    expect(shellWord('/tmp/a b')).toBe("'/tmp/a b'");
    expect(saveUri('/tmp/a b')).toBe("exec:cat > '/tmp/a b'");
  });
});

describe.sequential('boot snapshots (real QEMU, real guest)', () => {
  const store = mkdtempSync(join(tmpdir(), 'hilbox-boot-snap-'));
  afterAll(() => rmSync(store, { recursive: true, force: true }));

  async function start(warnings: string[] = []) {
    const qemu = await qemuPath();
    const b = new HilboxVm({ warn: (m) => warnings.push(m) }).withQemu(qemu).withGuest(await linuxGuest()).withAccel('auto').withMemory('512M').withCpus(1).withBootSnapshots(store);
    if (hasHilboxDevice(qemu)) b.withDevice({ fps: 10, 'mouse-rate-hz': 0, width: 320, height: 240 });
    return b.start();
  }
  const keys = () => readdirSync(store).filter((n) => !n.endsWith('.last-used'));

  it('the first boot stores the snapshot before any SSH session; the next VM resumes it', async () => {
    const first = await start();
    try {
      expect(first.bootKind).toBe('cold, boot snapshot stored');
      expect(readFileSync(first.consoleLog, 'utf8')).toMatch(/hilbox-guest: sshd ready/);
      // The store lifts QEMU's migration bandwidth cap for itself only: the default is back.
      expect((await first.qmp.execute<Record<string, unknown>>('query-migrate-parameters'))['max-bandwidth']).toBe(128 * 2 ** 20);
    } finally {
      await first.stop();
    }
    expect(keys()).toHaveLength(1);
    const p = snapshotPaths(store, keys()[0]!);
    const meta = JSON.parse(readFileSync(p.meta, 'utf8'));
    expect(meta.schema).toBe('hilbox-boot-snapshot/1');
    // QEMU's own account of the store, to explain its time.
    expect(meta.migration['total-time']).toBeGreaterThan(0);
    expect(statSync(p.state).size).toBeGreaterThanOrEqual(meta.migration.ram.transferred);

    const a = await start();
    let randA = '';
    try {
      expect(a.bootKind).toBe(`resumed from boot snapshot ${keys()[0]}`);
      expect(readFileSync(a.consoleLog, 'utf8')).toContain(RESUMED_LINE);
      // The guest's clock was set from the host's on resume (it stopped when the snapshot was taken).
      const t = Number((await a.ssh.run('date -u +%s')).stdout.trim());
      expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(30);
      // No session exists in the snapshot: the guest's sshd serves only this one.
      randA = (await a.ssh.run('head -c 16 /dev/urandom | od -An -tx1')).stdout.trim();
      expect((await a.ssh.run('dmesg')).stdout).toMatch(/crng reseeded due to virtual machine fork/);
    } finally {
      await a.stop();
    }
    const b = await start();
    try {
      expect(b.bootKind).toMatch(/^resumed/);
      // The VM generation ID changed on resume: two guests from one snapshot draw different bytes.
      expect((await b.ssh.run('head -c 16 /dev/urandom | od -An -tx1')).stdout.trim()).not.toBe(randA);
    } finally {
      await b.stop();
    }
  }, 600_000);

  it('a snapshot that does not resume is removed with a warning and the VM boots cold (storing a new one)', async () => {
    const [key] = keys();
    truncateSync(snapshotPaths(store, key!).state, 1 << 20);
    const warnings: string[] = [];
    const vm = await start(warnings);
    try {
      expect(warnings.join('\n')).toMatch(new RegExp(`boot snapshot ${key} removed \\(it did not resume`));
      expect(vm.bootKind).toBe('cold, boot snapshot stored');
      expect((await vm.ssh.run('echo ok')).stdout).toBe('ok\n');
    } finally {
      await vm.stop();
    }
    expect(existsSync(snapshotPaths(store, key!).state), JSON.stringify(readdirSync(store)) + (existsSync(snapshotPaths(store, key!).dir) ? JSON.stringify(readdirSync(snapshotPaths(store, key!).dir)) : "")).toBe(true);
  }, 600_000);
});
