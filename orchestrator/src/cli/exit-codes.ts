/** Exit codes of the hilbox CLI (documented in README.md). */
export const ExitCode = {
  ok: 0,
  /** The run finished and at least one case failed (or a benchmark regressed). */
  failed: 1,
  /** Bad input: command line, scenario file, device property. */
  usage: 2,
  /** The guest did not boot (console tail printed). */
  boot: 3,
  /** Host-side trouble: QEMU missing or died, ports, build failures. */
  infra: 4,
  /** The guest kernel crashed (crash signature in the console). */
  crash: 5,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
