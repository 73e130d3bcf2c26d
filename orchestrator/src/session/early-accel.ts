/**
 * Starts `auto`'s KVM probe as soon as QEMU and a guest kernel exist — on a cold run while the
 * guest image is still building — so that the run's first VM neither shares the host's cores
 * with the probe nor boots speculatively under TCG. One job: kick the probe once.
 *
 * The probe's verdict is cached per host boot (vm/accel.ts); with one cached, or an accelerator
 * named by the scenario or HILBOX_ACCEL, this starts nothing. The VM that boots next asks
 * chooseAccel like any other and, while the probe still runs, shares it.
 */
import { chooseAccel, type AccelChoice } from '../vm/accel.ts';

export interface EarlyAccel {
  /** The kernel to probe with is on disk (called by the guest build, then with the guest's kernel; the first call counts). */
  onKernel(path: string): void;
}

export function earlyAccelProbe(choice: AccelChoice, qemu: string, warn: (m: string) => void): EarlyAccel {
  let started = false;
  return {
    onKernel(kernel) {
      if (started || choice !== 'auto') return;
      started = true;
      // A failure here is the VM's to report: its own chooseAccel call probes again.
      chooseAccel(choice, { qemu, kernel, warn }).catch(() => {});
    },
  };
}
