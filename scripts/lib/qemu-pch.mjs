// Precompiles QEMU's qemu/osdep.h for a configured build directory. One job: make the compile of
// each of the ~960 files hilbox builds skip parsing the same headers again.
//
// Every QEMU source file includes "qemu/osdep.h" first (QEMU's rule), and that header pulls in
// glib, the C library and config-host.h. GCC uses a precompiled header (PCH) that it finds in an
// include directory searched before the header itself, when the PCH was made with the same
// compile flags and macros. The build directory is the first quoted-include directory of every
// compile (`-iquote .`), so <build>/qemu/osdep.h.gch/ holds one PCH per set of flags — the files
// independent of the target, and the x86_64-softmmu ones (NEED_CPU_H, CONFIG_TARGET) — and GCC
// takes the one that fits. A file whose flags fit none is compiled as before (GCC says so with
// -Winvalid-pch, which QEMU's flags include). <build>/qemu/osdep.h is a symbolic link to the real
// header: GCC opens the header again by the path it found it at. Measured on a cold build here:
// ninja 108 s with the PCH, 158 s without, same binary behaviour (the device tests pass on both).
//
// The PCH lives in the build directory, so a reconfigured (removed) directory loses it and the
// sanitizer build makes its own from its own flags. Nothing is made with ccache in use: ccache
// does not cache compiles that use a PCH unless told to, and its hits are worth more.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';

/** One compile of each flag set that the PCH should cover: meson's output directory of each library. */
const GROUPS = [
  { name: 'common', output: /^libqemuutil\.a\.p\// },
  { name: 'target', output: /^libqemu-x86_64-softmmu\.fa\.p\// },
];

/** Meson's `cc … -MD -MQ out -MF out.d -o out -c ../file.c` as a command that precompiles `header` into `gch`. */
export function pchCommand(command, header, gch) {
  const m = / -MD -MQ \S+ -MF \S+ -o \S+ -c \S+$/.exec(command);
  if (!m) return undefined;
  return `${command.slice(0, m.index)} -x c-header ${header} -o ${gch}`;
}

/**
 * Makes <buildDir>/qemu/osdep.h.gch/{common,target}.gch unless they exist. Returns true when the
 * PCH is in place; false (and the build goes on without it) when it could not be made.
 */
export async function precompileOsdep({ buildDir, srcDir, env, log }) {
  const dir = join(buildDir, 'qemu');
  const gchDir = join(dir, 'osdep.h.gch');
  if (GROUPS.every((g) => existsSync(join(gchDir, `${g.name}.gch`)))) return true;
  const t0 = Date.now();
  const header = join(srcDir, 'include', 'qemu', 'osdep.h');
  const giveUp = (why) => {
    rmSync(dir, { recursive: true, force: true });
    log(`compiling without a precompiled qemu/osdep.h (${why})`);
    return false;
  };
  // osdep.h includes config-poison.h, which ninja generates.
  const gen = await $({ cwd: buildDir, env, quiet: true })`ninja config-poison.h`.nothrow();
  if (gen.exitCode !== 0) return giveUp('ninja config-poison.h failed');
  let entries;
  try {
    entries = JSON.parse(readFileSync(join(buildDir, 'compile_commands.json'), 'utf8'));
  } catch (e) {
    return giveUp(`no compile_commands.json: ${e.message}`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(gchDir, { recursive: true });
  symlinkSync(header, join(dir, 'osdep.h'));
  const made = await Promise.all(GROUPS.map(async (g) => {
    const e = entries.find((x) => g.output.test(x.output ?? ''));
    const tmp = join(dir, `${g.name}.gch.tmp`);
    const cmd = e && pchCommand(e.command, header, tmp);
    if (!cmd) return `no compile command of ${g.name} to copy`;
    const r = await $({ cwd: buildDir, env, quiet: true })`sh -c ${cmd}`.nothrow();
    if (r.exitCode !== 0) return `${g.name}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    renameSync(tmp, join(gchDir, `${g.name}.gch`));
    return '';
  }));
  const failed = made.filter(Boolean);
  if (failed.length) return giveUp(failed.join('; '));
  log(`precompiled qemu/osdep.h for ${GROUPS.map((g) => g.name).join(' and ')} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}
