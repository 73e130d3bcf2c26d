/** Public library entry point for users' own tests. */
export { HilboxVm, type HilboxVmOptions } from './hilbox-vm.ts';
export { StartedHilboxVm, type GuestShell } from './started-vm.ts';
export { BootError, GuestCrashError, GuestExitError, HilboxError, InfraError, TimeoutError, UsageError } from '../core/errors.ts';
export type { DriverOptions, Guest, GuestSession } from '../guest/guest.ts';
export { LinuxGuest } from '../guest/linux.ts';
export { WindowsGuest } from '../guest/windows.ts';
export { ConsoleLineReadiness, SshCommandReadiness, type Readiness } from '../vm/readiness.ts';
export { Machine, type MachineOptions } from '../vm/machine.ts';
export { MouseFeeder, type FeedOptions, type FeedResult } from '../feed/mouse-feeder.ts';
export { encodeRecord, encodeBundle, decodeRecord, type MouseEvent } from '../feed/record.ts';
export { QmpClient, QmpError } from '../qmp/client.ts';
export { DEVICE_COUNTERS, type DeviceCounters } from '../qmp/device.ts';
export { SshClient, type ExecResult, type ExecOptions } from '../ssh/client.ts';
export { scanForCrashes, LINUX_CRASH_SIGNATURES } from '../vm/crash-scan.ts';
