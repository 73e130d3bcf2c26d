/** The precompiled-header step of the QEMU build: how it turns a compile of meson's into a precompile. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a zx script library without type declarations
import { pchCommand } from '../../scripts/lib/qemu-pch.mjs';

describe('pchCommand', () => {
  it("keeps every flag of meson's compile and precompiles the header instead of the file", () => {
    const cmd = "cc -m64 -Ilibqemuutil.a.p -iquote . '-DCONFIG_TARGET=\"x86_64-softmmu-config-target.h\"' -fPIE -MD -MQ libqemuutil.a.p/util_osdep.c.o -MF libqemuutil.a.p/util_osdep.c.o.d -o libqemuutil.a.p/util_osdep.c.o -c ../util/osdep.c";
    expect(pchCommand(cmd, '/src/include/qemu/osdep.h', 'qemu/common.gch.tmp')).toBe(
      "cc -m64 -Ilibqemuutil.a.p -iquote . '-DCONFIG_TARGET=\"x86_64-softmmu-config-target.h\"' -fPIE -x c-header /src/include/qemu/osdep.h -o qemu/common.gch.tmp",
    );
  });

  it('gives up on a command of another shape (the build then goes on without a PCH)', () => {
    expect(pchCommand('cc -c ../util/osdep.c -o x.o', '/h', '/g')).toBeUndefined();
  });
});
