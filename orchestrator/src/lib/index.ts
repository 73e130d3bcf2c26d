/** Public library entry point for users' own tests. */
export { HilboxVm, type HilboxVmOptions } from './hilbox-vm.ts';
export { StartedHilboxVm, type GuestShell } from './started-vm.ts';
export { BootError, GuestCrashError, GuestExitError, HilboxError, InfraError, TimeoutError } from '../vm/errors.ts';
export { LinuxGuest, type Guest, type LoadDriverOptions } from '../vm/guest.ts';
export { Machine, type MachineOptions } from '../vm/machine.ts';
export { MouseFeeder, type FeedOptions, type FeedResult } from '../feed/mouse-feeder.ts';
export { encodeRecord, encodeBundle, decodeRecord, type MouseEvent } from '../feed/record.ts';
export { QmpClient, QmpError } from '../qmp/client.ts';
export { DEVICE_COUNTERS, type DeviceCounters } from '../qmp/device.ts';
export { SshClient, type ExecResult, type ExecOptions } from '../ssh/client.ts';
export { scanForCrashes, LINUX_CRASH_SIGNATURES } from '../vm/crash-scan.ts';
