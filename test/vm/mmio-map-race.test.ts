/**
 * QEMU 7.2's TCG let a vCPU look an MMIO access up in a memory map another thread had just
 * committed, with a TLB entry made from the map before it (qemu-device/patches/README.md, patch
 * 0001). Seen as QEMU dying of SIGSEGV in memory_region_dispatch_write while the security suite
 * unplugged a card, and, more often, as a register read that returned another region's value.
 *
 * Real QEMU, real guest kernel: on CPU 1 the guest reads hilbox-pci's ID register through a
 * mapping of BAR0, as fast as it can; on CPU 0 it turns the virtio-rng's memory decoding off and
 * on, so QEMU commits a new memory map about 1600 times a second meanwhile. Every read must
 * return the ID. Without the patch, three runs of this test on this host (AMD EPYC, 2 cores) all
 * failed, with 3 and 8 wrong reads in two of them (0xfee00004, 1, 0: other regions' values); with
 * it, two runs read the ID 34.5 million times each and never anything else.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import { ID_MAGIC } from '../../orchestrator/src/device/spec.ts';
import { linuxGuest, qemuPath } from './helpers.ts';

const SECONDS = 15;
const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'hilbox-mmio-race-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The guest program, static so the initramfs needs nothing more. */
function buildGuestProgram(): string {
  const out = join(work, 'mmio-map-race');
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', out, join(here, 'mmio-map-race.c')], { stdio: 'pipe' });
  return out;
}

/** A PCI function's sysfs directory in the guest, by vendor and device ID. */
const findFunction = (vendor: string, device: string) =>
  `$(for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = ${vendor} ] && [ "$(cat $d/device)" = ${device} ] && echo $d && break; done)`;

describe('MMIO while another CPU changes the memory map (TCG, 2 vCPUs)', () => {
  it('every read of the ID register returns the ID', async () => {
    const program = buildGuestProgram();
    await using vm = await new HilboxVm()
      .withQemu(await qemuPath())
      .withGuest(await linuxGuest())
      .withAccel('tcg')
      .withMemory('256M')
      .withCpus(2)
      .withDevice({ 'mouse-rate-hz': 0 })
      .start();
    await vm.ssh.upload(program, '/tmp/mmio-map-race', 0o755);
    const script = [
      `hb=${findFunction('0x1234', '0x4842')}`,
      `rng=${findFunction('0x1af4', '0x1005')}`,
      '[ -n "$hb" ] && [ -n "$rng" ] || { echo "no hilbox-pci or virtio-rng in the guest" >&2; exit 2; }',
      // Nothing may use the virtio-rng while its decoding is off.
      'if [ -e $rng/driver ]; then echo $(basename $rng) > $rng/driver/unbind || exit 2; fi',
      `exec /tmp/mmio-map-race $hb/resource0 $rng/config ${SECONDS}`,
    ].join('\n');
    const r = await vm.ssh.exec(script, { timeoutMs: vm.scaled(120_000) });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    const got = JSON.parse(r.stdout.trim()) as { expected: number; reads: number; commits: number; wrong: number; seen: number[] };
    expect(got.expected).toBe(ID_MAGIC);
    // Enough of both for the race to have had its chances (about 24 000 commits and 20-35
    // million reads in 15 s on this host); a slower host still does a tenth of that.
    expect(got.commits).toBeGreaterThan(2400);
    expect(got.reads).toBeGreaterThan(2_000_000);
    expect(got.wrong, `wrong values: ${got.seen.map((v) => '0x' + v.toString(16)).join(' ')}`).toBe(0);
  }, 300_000);
});
