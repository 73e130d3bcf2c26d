/**
 * SPEC §9: every configuration property is validated at realize; an invalid value stops QEMU
 * with "hilbox-pci: property '<name>' …: allowed …". Boundary values are accepted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { QemuExitError, QtestSession } from '../../orchestrator/src/qtest/client.ts';
import { FB_MAX_BYTES_PER_S, validateProps, type DeviceProps } from '../../orchestrator/src/device/spec.ts';
import { DeviceSchema } from '../../orchestrator/src/scenario/schema.ts';
import { BUILD_TIMEOUT_MS, deviceArg, qemuBinary, startRig } from './helpers.ts';

let qemu: string;
beforeAll(async () => {
  qemu = await qemuBinary();
}, BUILD_TIMEOUT_MS);

type Props = Record<string, string | number | boolean>;

const invalid: Array<[property: string, props: Props]> = [
  ['width', { width: 15 }],
  ['width', { width: 8193 }],
  ['height', { height: 15 }],
  ['height', { height: 8193 }],
  ['stride', { width: 640, stride: 1919 }],
  ['stride', { width: 16, stride: 65537 }],
  ['stride', { width: 16, height: 4097, stride: 65536, 'fb-mode': 'mmio' }], // 256 MiB + 64 KiB
  ['fps', { fps: 0 }],
  ['fps', { fps: 1001 }],
  ['fb-mode', { 'fb-mode': 'vga' }],
  ['mmio-latency-ns', { 'mmio-latency-ns': 1 }], // only with fb-mode=mmio
  ['mmio-latency-ns', { 'fb-mode': 'mmio', 'mmio-latency-ns': 100001 }],
  ['fifo-depth', { 'fifo-depth': 0 }],
  ['fifo-depth', { 'fifo-depth': 65537 }],
  ['mouse-rate-hz', { 'mouse-rate-hz': 124 }],
  ['mouse-rate-hz', { 'mouse-rate-hz': 8001 }],
  ['mouse-bundle', { 'mouse-bundle': 0 }],
  ['mouse-bundle', { 'mouse-bundle': 65 }],
];

const valid: Props[] = [
  { width: 16, height: 16, fps: 1, 'fifo-depth': 1, 'mouse-rate-hz': 125, 'mouse-bundle': 64 },
  { width: 8192, height: 16, fps: 1000, 'fb-mode': 'mmio', 'mmio-latency-ns': 100000, 'fifo-depth': 65536, 'mouse-rate-hz': 8000, 'mouse-bundle': 1 },
  { width: 16, height: 4096, stride: 65536, 'fb-mode': 'mmio' }, // exactly 256 MiB
  { width: 640, height: 8192, stride: 1920, 'mouse-rate-hz': 0 }, // stride = 3 × width
];

describe('invalid property values stop QEMU with a message naming the property', () => {
  for (const [property, props] of invalid) {
    it(`${property}: ${JSON.stringify(props)}`, async () => {
      expect(validateProps(props as unknown as Partial<DeviceProps>)?.property).toBe(property); // spec.ts agrees
      // ...and so does the scenario schema: a scenario the device would refuse never boots.
      const parsed = DeviceSchema.safeParse(props);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues.map((i) => i.path.join('.'))).toContain(property);
      const err = await QtestSession.start({ qemu, args: ['-device', deviceArg(props)] }).then(
        async (qt) => {
          await qt.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err, 'QEMU started although the value is invalid').toBeInstanceOf(QemuExitError);
      const stderr = (err as QemuExitError).stderr;
      expect(stderr).toContain(`hilbox-pci: property '${property}'`);
      expect(stderr).toMatch(/allowed/);
      expect((err as QemuExitError).exitCode).toBe(1);
    });
  }
});

describe('boundary values are accepted', () => {
  for (const props of valid) {
    it(JSON.stringify(props), async () => {
      expect(validateProps(props as unknown as Partial<DeviceProps>)).toBeUndefined();
      expect(DeviceSchema.safeParse(props).success).toBe(true);
      await using rig = await startRig({ props: props as unknown as Partial<DeviceProps> });
      expect(await rig.rd32('ID')).toBe(0x584f4248);
      expect(await rig.rd32('WIDTH')).toBe(props.width);
    });
  }
});

/**
 * SPEC §9: in fb-mode=direct the device rewrites the whole picture every frame, so
 * stride × height × fps is bounded (HB_FB_MAX_BYTES_PER_S, 2 GiB/s); mmio mode rewrites
 * nothing and is not bounded; spec.ts (FB_MAX_BYTES_PER_S) and the scenario schema apply the same bound.
 */
const MAX_BYTES_PER_S = 2 ** 31;

describe('the direct-mode render rate stride × height × fps is bounded', () => {
  const startErr = (props: Props) =>
    QtestSession.start({ qemu, args: ['-device', deviceArg(props)] }).then(
      async (qt) => {
        await qt.close();
        return undefined;
      },
      (e: unknown) => e,
    );

  it('8192 × 8192 rgb24 (192 MiB) at 11 fps exceeds 2 GiB/s: QEMU stops, naming fps — and spec.ts and the scenario schema agree', async () => {
    expect(8192 * 3 * 8192 * 11).toBeGreaterThan(MAX_BYTES_PER_S);
    expect(MAX_BYTES_PER_S).toBe(FB_MAX_BYTES_PER_S);
    expect(validateProps({ width: 8192, height: 8192, fps: 11 })?.property).toBe('fps');
    const parsed = DeviceSchema.safeParse({ width: 8192, height: 8192, fps: 11 });
    expect(parsed.error?.issues.map((i) => i.path.join('.'))).toContain('fps');
    const err = await startErr({ width: 8192, height: 8192, fps: 11 });
    expect(err, 'QEMU started although the render rate is too high').toBeInstanceOf(QemuExitError);
    expect((err as QemuExitError).stderr).toContain("hilbox-pci: property 'fps'");
    expect((err as QemuExitError).stderr).toMatch(/allowed up to 2048 MiB\/s in fb-mode=direct/);
    expect((err as QemuExitError).exitCode).toBe(1);
  });

  it('256 MiB at 1000 fps is refused in direct mode', async () => {
    const err = await startErr({ width: 16, height: 4096, stride: 65536, fps: 1000 });
    expect((err as QemuExitError | undefined)?.stderr ?? '').toContain("hilbox-pci: property 'fps'");
  });

  for (const props of [
    { width: 8192, height: 8192, fps: 10 }, // 1.875 GiB/s
    { width: 16, height: 4096, stride: 65536, fps: 8 }, // exactly 2 GiB/s
    { width: 3840, height: 2160, fps: 60 }, // 4K60: 1.39 GiB/s
    { width: 16, height: 4096, stride: 65536, fps: 1000, 'fb-mode': 'mmio' }, // mmio: nothing rendered
  ] as Props[]) {
    it(`accepts ${JSON.stringify(props)}`, async () => {
      expect(validateProps(props as unknown as Partial<DeviceProps>)).toBeUndefined();
      expect(DeviceSchema.safeParse(props).success).toBe(true);
      await using rig = await startRig({ props: { ...(props as unknown as Partial<DeviceProps>), 'mouse-rate-hz': 0 }, start: { timeoutMs: 30_000 } });
      expect(await rig.rd32('FPS')).toBe(props.fps);
    });
  }
});

describe('fb-mode=mmio has no RAM behind BAR2; direct mode RAM is not migratable', () => {
  it('info mtree / info ramblock', async () => {
    for (const mode of ['mmio', 'direct'] as const) {
      await using rig = await startRig({ props: { width: 1024, height: 1024, 'fb-mode': mode, 'mouse-rate-hz': 0 } });
      const mtree = await rig.qt.qmp!.hmp('info mtree');
      const line = mtree.split('\n').find((l) => /: hilbox-fb$/.test(l.trim())) ?? '';
      expect(line, mtree).toMatch(mode === 'mmio' ? /\(prio \d+, i\/o\)/ : /\(prio \d+, romd?\)/);
      const blocks = await rig.qt.qmp!.hmp('info ramblock');
      // no block is registered for migration under the device's name in either mode
      expect(blocks).not.toMatch(/hilbox-fb/);
      // and only direct mode has a 4 MiB block at all (BAR2 of a 3 MiB frame)
      const sizes = [...blocks.matchAll(/0x0*400000\s/g)].length;
      expect(sizes > 0, blocks).toBe(mode === 'direct');
    }
  });
});
