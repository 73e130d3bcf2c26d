/** What every suite gets: the running VM, the scenario, directories, timeouts, progress output. */
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { Output } from '../core/output.ts';

export interface SuiteContext {
  vm: StartedHilboxVm;
  scenario: Scenario;
  out: Output;
  /** Artifact directory of this run. */
  outDir: string;
  /** Private scratch directory of this run (feed sockets, downloads); removed afterwards. */
  runDir: string;
  /** Per-case timeout, already scaled for the accelerator. */
  caseTimeoutMs: number;
}

export function caseTimeoutMs(vm: StartedHilboxVm, scenario: Scenario): number {
  return vm.scaled((scenario.timeouts?.caseSeconds ?? 120) * 1000);
}
