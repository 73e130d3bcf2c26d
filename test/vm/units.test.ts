import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeBundle, encodeRecord, FEED_MAGIC, FLAG_END_OF_REPORT } from '../../orchestrator/src/feed/record.ts';
import { buildQemuArgs, formatPropValue } from '../../orchestrator/src/vm/qemu-args.ts';
import { emptyQcow2 } from '../../orchestrator/src/vm/qcow2.ts';
import { isHostForwardFailure, pickFreePort, releasePort } from '../../orchestrator/src/vm/ports.ts';
import { BootError, GuestCrashError, HilboxError, InfraError } from '../../orchestrator/src/core/errors.ts';

describe('feed records (SPEC §6)', () => {
  it('encodes the 16-byte little-endian layout', () => {
    const b = encodeRecord({ dx: -2, dy: 300, wheel: -1, buttons: 0x05, flags: FLAG_END_OF_REPORT });
    expect(b.length).toBe(16);
    expect(b.subarray(0, 4).toString('latin1')).toBe('HBEV');
    expect(b.readUInt32LE(0)).toBe(FEED_MAGIC);
    expect([...b]).toEqual([0x48, 0x42, 0x45, 0x56, 0xfe, 0xff, 0x2c, 0x01, 0xff, 0x05, 0x01, 0, 0, 0, 0, 0]);
    expect(decodeRecord(b)).toEqual({ magic: FEED_MAGIC, dx: -2, dy: 300, wheel: -1, buttons: 5, flags: 1 });
  });

  it('sets END_OF_REPORT only on the last record of a bundle', () => {
    const b = encodeBundle([{ dx: 1, dy: 1, flags: 1 }, { dx: 2, dy: 2 }, { dx: 3, dy: 3 }]);
    expect(b.length).toBe(48);
    expect([0, 1, 2].map((i) => decodeRecord(b, i * 16).flags)).toEqual([0, 0, 1]);
    expect(decodeRecord(b, 32).dx).toBe(3);
  });

  it('rejects out-of-range fields', () => {
    expect(() => encodeRecord({ dx: 40000, dy: 0 })).toThrow(RangeError);
    expect(() => encodeRecord({ dx: 0, dy: 0, buttons: 0x20 })).toThrow(RangeError);
    expect(() => encodeRecord({ dx: 0.5, dy: 0 })).toThrow(RangeError);
  });
});

describe('QEMU arguments', () => {
  const base = {
    firmwareDirs: ['/fw'],
    accel: 'tcg' as const,
    memory: '512M',
    cpus: 1,
    boot: ['-kernel', '/k'],
    qmpSocket: '/r/qmp.sock',
    serialSocket: '/r/console.sock',
    sshPort: 40000,
    nicModel: 'virtio-net-pci',
    paused: true,
  };

  it('puts hilbox-pci on its own root port with the feed chardev', () => {
    const a = buildQemuArgs({ ...base, device: { props: { fps: 50, 'fb-mode': 'mmio', msi: false }, feedSocket: '/r/feed.sock' } });
    expect(a).toContain('pcie-root-port,id=rp0,chassis=1,slot=1,mem-reserve=64M,pref32-reserve=64M');
    expect(a).toContain('pcie-root-port,id=rp1,chassis=2,slot=2,mem-reserve=64M,pref32-reserve=64M');
    expect(a).toContain('hilbox-pci,id=hb0,bus=rp0,chardev=hbfeed,fps=50,fb-mode=mmio,msi=off');
    expect(a).toContain('socket,id=hbfeed,path=/r/feed.sock,server=on,wait=off');
    expect(a).toContain('user,id=net0,hostfwd=tcp:127.0.0.1:40000-:22');
    expect(a).toContain('-no-reboot');
    expect(a).toContain('-S');
  });

  it('refuses option injection through property values and paths', () => {
    expect(() => formatPropValue('fps', '50,chardev=evil')).toThrow(/only/);
    expect(() => formatPropValue('fps', 'a=b')).toThrow();
    expect(() => formatPropValue('bad,key', 1)).toThrow();
    expect(() => buildQemuArgs({ ...base, device: { props: { id: 'x' } } })).toThrow(/set by hilbox/);
    expect(() => buildQemuArgs({ ...base, qmpSocket: '/r/a,b' })).toThrow(/','/);
    expect(() => buildQemuArgs({ ...base, memory: '512M -device x' })).toThrow();
  });
});

describe('small pieces', () => {
  it('builds a qcow2 header', () => {
    const q = emptyQcow2(64 * 1024 * 1024);
    expect(q.readUInt32BE(0)).toBe(0x514649fb);
    expect(q.readUInt32BE(4)).toBe(2);
    expect(q.readBigUInt64BE(24)).toBe(64n * 1024n * 1024n);
    expect(q.length).toBe(4 * 65536);
  });

  it('hands out distinct free ports and recognises QEMU hostfwd failures', async () => {
    const ports = await Promise.all([pickFreePort(), pickFreePort(), pickFreePort()]);
    expect(new Set(ports).size).toBe(3);
    ports.forEach(releasePort);
    expect(isHostForwardFailure("qemu-system-x86_64: -netdev user,id=n0,hostfwd=tcp:127.0.0.1:2299-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:2299-:22'")).toBe(true);
    expect(isHostForwardFailure('qemu: something else')).toBe(false);
  });

  it('errors carry their kind and console tail', () => {
    const e = new BootError('no ssh', { consoleTail: ['a', 'b'], consoleLogPath: '/x/console.log' });
    expect(e).toBeInstanceOf(HilboxError);
    expect(e.kind).toBe('boot');
    expect(e.message).toContain('/x/console.log');
    expect(e.message).toMatch(/guest console[^]*\na\nb\n/);
    expect(new InfraError('x').kind).toBe('infra');
    const c = new GuestCrashError('kernel-panic', ['Kernel panic - not syncing: x']);
    expect(c.message).toContain('kernel-panic');
    expect(c.name).toBe('GuestCrashError');
  });
});
