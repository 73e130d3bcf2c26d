/**
 * The command that starts a QEMU machine. One job: decide whether QEMU runs through the build's
 * `hilbox-no-thp` helper (qemu-device/no-thp-exec.c), which disables transparent huge pages for
 * it and then execs QEMU in place (same pid, stdio and signals).
 *
 * Why: QEMU asks for huge pages on guest RAM and on TCG's code buffer; on a host that backs
 * fresh memory lazily (a cloud VM whose free pages go back to its own host) every first touch
 * then costs a 2 MiB page, and a booting guest touches its RAM scattered. Measured on the
 * project's machine class: `hilbox boot-time --thp` (README, "Boot snapshots").
 * A QEMU without the helper beside it ($HILBOX_QEMU, a distribution's binary) runs as it is.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The helper's name in a hilbox QEMU build's bin/ (scripts/build-qemu.mjs HELPERS). */
export const NO_THP_HELPER = 'hilbox-no-thp';

export interface QemuCommand {
  file: string;
  args: string[];
}

/**
 * `qemu` with `args`, through the helper beside it unless `hugePages` is asked for (or there is
 * no helper).
 */
export function qemuCommand(qemu: string, args: readonly string[], o: { hugePages?: boolean } = {}): QemuCommand {
  const helper = join(dirname(qemu), NO_THP_HELPER);
  if (o.hugePages || !existsSync(helper)) return { file: qemu, args: [...args] };
  return { file: helper, args: [qemu, ...args] };
}
