/**
 * SPEC §9: every configuration property is validated at realize; an invalid value stops QEMU
 * with "hilbox-pci: property '<name>' …: allowed …". Boundary values are accepted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { QemuExitError, QtestSession } from '../../orchestrator/src/qtest/client.ts';
import { validateProps, type DeviceProps } from '../../orchestrator/src/device/spec.ts';
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
