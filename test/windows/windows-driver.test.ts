/**
 * The Windows reference driver, checked on Linux: builds the package with
 * scripts/build-windows.mjs (cached), then inspects hilbox.sys as a PE image, its
 * Authenticode signature, the INF and the IOCTL header. Nothing here runs Windows.
 * The catalog and the certificates are checked in catalog.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  computeChecksum, DIR_BASERELOC, DIR_SECURITY, DLLCHAR_APPCONTAINER, DLLCHAR_DYNAMIC_BASE, DLLCHAR_HIGH_ENTROPY_VA,
  DLLCHAR_NO_SEH, DLLCHAR_NX_COMPAT, exportCount, IMAGE_FILE_EXECUTABLE_IMAGE, IMAGE_FILE_MACHINE_AMD64,
  IMAGE_FILE_RELOCS_STRIPPED, IMAGE_SUBSYSTEM_NATIVE, parsePe, readCertificates, readImports, readUnwindEntries,
  rvaToOffset, SCN_MEM_EXECUTE, SCN_MEM_WRITE, sectionOf, UNW_FLAG_EHANDLER, type PeImage,
} from './pe.ts';
import { parseInf, type Inf } from './inf.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(repo, 'scripts', 'build-windows.mjs');
const zxCli = join(repo, 'node_modules', 'zx', 'build', 'cli.js');

function runBuild(): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [zxCli, script], { cwd: repo, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let pkg = '';
let img: PeImage;
let inf: Inf;

beforeAll(() => {
  const r = runBuild();
  if (r.code !== 0) throw new Error(`build-windows failed (${r.code}):\n${r.stderr}`);
  pkg = r.stdout.trim().split('\n').at(-1) ?? '';
  img = parsePe(readFileSync(join(pkg, 'hilbox.sys')));
  inf = parseInf(readFileSync(join(pkg, 'hilbox.inf'), 'utf8'));
}, 600_000);

describe('build-windows.mjs', () => {
  it('prints the absolute package directory last and lays out the package', () => {
    expect(pkg.startsWith('/')).toBe(true);
    expect(pkg).toMatch(/\/windows\/[0-9a-f]{16}$/);
    for (const f of ['hilbox.sys', 'hilbox.inf', 'hilbox.cat', 'hilbox-test-ca.cer', 'hilbox-test-signer.cer', 'hilbox-package.json', 'INSTALL.txt', 'build.json']) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    // private keys stay in the cache's pki directory, never in the package or the repo
    expect(readdirSync(pkg).filter((f) => /\.(key|pem|pfx|p12)$/.test(f))).toEqual([]);
    const git = spawnSync('git', ['ls-files', '--others', '--cached', '--exclude-standard'], { cwd: repo, encoding: 'utf8' });
    expect(git.stdout.split('\n').filter((f) => /\.(key|pfx|p12|pem)$/.test(f))).toEqual([]);
    const build = JSON.parse(readFileSync(join(pkg, 'build.json'), 'utf8')) as { catalog: { file: string; tamperedCopyRejected: boolean }; imports: string[] };
    expect(build.catalog).toMatchObject({ file: 'hilbox.cat', tamperedCopyRejected: true });
    expect(build.imports.sort()).toEqual(['HAL.dll', 'ntoskrnl.exe']);
  });

  it('is a cached no-op the second time', () => {
    const r = runBuild();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('up to date');
    expect(r.stdout.trim().split('\n').at(-1)).toBe(pkg);
  });
});

describe('hilbox.sys PE image', () => {
  it('is an x64 native-subsystem kernel image', () => {
    expect(img.machine).toBe(IMAGE_FILE_MACHINE_AMD64);
    expect(img.magic).toBe(0x20b);
    expect(img.subsystem).toBe(IMAGE_SUBSYSTEM_NATIVE);
    expect(img.characteristics & IMAGE_FILE_EXECUTABLE_IMAGE).toBeTruthy();
    expect(img.characteristics & IMAGE_FILE_RELOCS_STRIPPED).toBe(0);
    expect(img.subsystemVersion).toEqual([10, 0]);
    expect(img.sectionAlignment).toBe(0x1000);
    expect(img.fileAlignment).toBe(0x200);
  });

  it('has sane DLL characteristics: ASLR, NX, no NO_SEH / AppContainer', () => {
    const dc = img.dllCharacteristics;
    expect(dc & DLLCHAR_DYNAMIC_BASE).toBeTruthy();
    expect(dc & DLLCHAR_NX_COMPAT).toBeTruthy();
    expect(dc & DLLCHAR_HIGH_ENTROPY_VA).toBeTruthy();
    expect(dc & DLLCHAR_NO_SEH).toBe(0); // the image has an exception handler
    expect(dc & DLLCHAR_APPCONTAINER).toBe(0);
    const reloc = img.directories[DIR_BASERELOC];
    expect(reloc && reloc.size > 0).toBe(true); // relocatable
  });

  it('has its entry point in executable code and no writable+executable section', () => {
    expect(img.entryPoint).toBeGreaterThan(0);
    const s = sectionOf(img, img.entryPoint);
    expect(s?.name).toBe('.text');
    expect((s?.characteristics ?? 0) & SCN_MEM_EXECUTE).toBeTruthy();
    for (const sec of img.sections) {
      const wx = (sec.characteristics & SCN_MEM_WRITE) !== 0 && (sec.characteristics & SCN_MEM_EXECUTE) !== 0;
      expect(wx, sec.name).toBe(false);
    }
  });

  it('imports only from ntoskrnl.exe and HAL.dll', () => {
    const imports = readImports(img);
    expect(imports.map((i) => i.dll).sort()).toEqual(['HAL.dll', 'ntoskrnl.exe']);
    const hal = imports.find((i) => i.dll === 'HAL.dll')!;
    expect(hal.functions.sort()).toEqual(['KeQueryPerformanceCounter', 'KeStallExecutionProcessor']);
    const nt = new Set(imports.find((i) => i.dll === 'ntoskrnl.exe')!.functions);
    for (const f of ['IoCsqInitialize', 'IoCsqInsertIrp', 'IoCsqRemoveNextIrp', 'IoConnectInterruptEx', 'IoDisconnectInterruptEx',
      'KeInsertQueueDpc', 'KeSynchronizeExecution', 'MmMapIoSpaceEx', 'IoAllocateMdl', 'MmBuildMdlForNonPagedPool',
      'MmMapLockedPagesSpecifyCache', 'MmUnmapLockedPages', 'KeStackAttachProcess', 'KeUnstackDetachProcess',
      'PsSetCreateProcessNotifyRoutine', 'ObfReferenceObject', 'IoRegisterDeviceInterface', 'ZwSetSecurityObject',
      'MmProbeAndLockPages', '__C_specific_handler', 'IoAcquireRemoveLockEx', 'IoReleaseRemoveLockAndWaitEx']) {
      expect(nt.has(f), f).toBe(true);
    }
    // nothing from user-mode DLLs, the CRT, or KMDF
    expect([...nt].filter((f) => /^(Wdf|printf|malloc|free|_?exit)/.test(f))).toEqual([]);
    expect(exportCount(img)).toBe(0);
  });

  it('has exactly one SEH scope, handled by ntoskrnl!__C_specific_handler (seh.c)', () => {
    const withHandler = readUnwindEntries(img).filter((e) => e.flags & UNW_FLAG_EHANDLER);
    expect(withHandler).toHaveLength(1);
    const fn = withHandler[0]!;
    // the handler is an import thunk: jmp qword [rip+disp32] -> the __C_specific_handler IAT slot
    const thunk = rvaToOffset(img, fn.handlerRva!);
    expect([img.buf[thunk], img.buf[thunk + 1]]).toEqual([0xff, 0x25]);
    const slot = fn.handlerRva! + 6 + img.buf.readInt32LE(thunk + 2);
    const nt = readImports(img).find((i) => i.dll === 'ntoskrnl.exe')!;
    expect(nt.functions[nt.iatRvas.indexOf(slot)]).toBe('__C_specific_handler');
    // SCOPE_TABLE: one record {Begin, End, Handler = 1 (EXCEPTION_EXECUTE_HANDLER), JumpTarget}
    const st = rvaToOffset(img, fn.handlerDataRva!);
    const word = (o: number) => img.buf.readUInt32LE(st + o);
    const [count, begin, end, handler, target] = [word(0), word(4), word(8), word(12), word(16)];
    expect(count).toBe(1);
    expect(handler).toBe(1);
    expect(begin).toBeGreaterThanOrEqual(fn.begin);
    expect(end).toBeGreaterThan(begin);
    expect(target).toBeGreaterThanOrEqual(end);
    expect(target).toBeLessThan(fn.end);
    // the guarded region is "call <reg>; store result; nop"
    const code = rvaToOffset(img, begin);
    expect(img.buf[code]).toBe(0xff);
    expect(img.buf[rvaToOffset(img, end) - 1]).toBe(0x90);
  });

  it('carries an Authenticode signature and a valid checksum', () => {
    const sec = img.directories[DIR_SECURITY];
    expect(sec && sec.size > 0).toBe(true);
    const certs = readCertificates(img);
    expect(certs).toHaveLength(1);
    expect(certs[0]).toMatchObject({ revision: 0x0200, type: 0x0002 }); // WIN_CERT_TYPE_PKCS_SIGNED_DATA
    expect(img.checksum).toBe(computeChecksum(img));
  });

  it('verifies against the generated test CA, and only against it', () => {
    const cache = dirname(pkg);
    const ok = spawnSync('osslsigncode', ['verify', '-CAfile', join(cache, 'pki', 'ca.crt'), '-in', join(pkg, 'hilbox.sys')], { encoding: 'utf8' });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Signature verification: ok/);
    expect(ok.stdout).toMatch(/hilbox TEST driver signing/);
    const der = spawnSync('openssl', ['x509', '-inform', 'DER', '-in', join(pkg, 'hilbox-test-ca.cer'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    const pem = spawnSync('openssl', ['x509', '-in', join(cache, 'pki', 'ca.crt'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    expect(der.stdout).toBe(pem.stdout); // the shipped .cer is that CA
    const bad = spawnSync('osslsigncode', ['verify', '-CAfile', '/etc/ssl/certs/ca-certificates.crt', '-in', join(pkg, 'hilbox.sys')], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
  });
});

describe('hilbox.inf', () => {
  it('is a System-class PnP INF with a catalog entry', () => {
    const v = inf.values('Version');
    expect(v.get('signature')).toBe('$WINDOWS NT$');
    expect(v.get('class')).toBe('System');
    expect(v.get('classguid')?.toLowerCase()).toBe('{4d36e97d-e325-11ce-bfc1-08002be10318}');
    expect(v.get('catalogfile')).toBe('hilbox.cat');
    expect(v.get('driverver')).toMatch(/^\d\d\/\d\d\/\d{4},\d+\.\d+\.\d+\.\d+$/);
  });

  it('matches PCI\\VEN_1234&DEV_4842 and installs the hilbox service with hilbox.sys', () => {
    const manufacturer = inf.lines('Manufacturer')[0]!;
    const [models, ...decorations] = manufacturer.value.split(',').map((s) => s.trim());
    // NTamd64.10.0 or NTamd64.10.0...<build>: x64, Windows 10 and later
    const decoration = decorations.find((d) => /^NTamd64\.10\.0(\.|$)/.test(d));
    expect(decoration, decorations.join(', ')).toBeDefined();
    const modelLines = inf.lines(`${models}.${decoration}`);
    const hwids = modelLines.flatMap((l) => l.value.split(',').slice(1).map((s) => s.trim()));
    expect(hwids).toContain('PCI\\VEN_1234&DEV_4842');
    const ddinstall = modelLines[0]!.value.split(',')[0]!.trim();
    expect(inf.lines(`${ddinstall}.NT`).map((l) => l.key)).toContain('CopyFiles');
    const svc = inf.lines(`${ddinstall}.NT.Services`).find((l) => l.key === 'AddService')!;
    const [name, flags, section] = svc.value.split(',').map((s) => s.trim());
    expect(name).toBe('hilbox');
    expect(Number(flags) & 0x2).toBe(0x2); // SPSVCINST_ASSOCSERVICE
    const s = inf.values(section!);
    expect(s.get('servicebinary')).toBe('%13%\\hilbox.sys');
    expect(s.get('servicetype')).toBe('1');
    expect(inf.lines('SourceDisksFiles').map((l) => l.key)).toEqual(['hilbox.sys']);
  });

  it('restricts the device to SYSTEM and Administrators and asks for MSI', () => {
    const [models, ...decorations] = inf.lines('Manufacturer')[0]!.value.split(',').map((s) => s.trim());
    const decoration = decorations.find((d) => /^NTamd64\.10\.0(\.|$)/.test(d));
    const hw = inf.values(`${inf.lines(`${models}.${decoration}`)[0]!.value.split(',')[0]!.trim()}.NT.HW`);
    const addreg = inf.lines(hw.get('addreg')!).map((l) => l.raw);
    expect(addreg).toContain('HKR,,Security,,"D:P(A;;GA;;;SY)(A;;GA;;;BA)"');
    expect(addreg.some((l) => /MSISupported,0x00010001,1$/.test(l))).toBe(true);
  });

  it('defines every %string% it uses', () => {
    const strings = inf.values('Strings');
    const used = [...inf.text.matchAll(/%([A-Za-z][\w.]*)%/g)].map((m) => m[1]!.toLowerCase());
    for (const u of used) expect(strings.has(u), u).toBe(true);
  });
});

describe('hilbox_ioctl.h', () => {
  it('compiles in user mode with the expected IOCTL codes and struct sizes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-ioctl-'));
    try {
      const src = join(dir, 't.c');
      // CTL_CODE(0x8842, 0x8B0 + n, method, FILE_READ_ACCESS=1)
      const code = (fn: number, method: number) => ((0x8842 << 16) | (1 << 14) | ((0x8b0 + fn) << 2) | method) >>> 0;
      writeFileSync(src, `#include <windows.h>
#include <winioctl.h>
#include "hilbox_ioctl.h"
_Static_assert(IOCTL_HILBOX_INFO == 0x${code(0, 0).toString(16)}u, "INFO");
_Static_assert(IOCTL_HILBOX_COPY_FRAME == 0x${code(5, 0).toString(16)}u, "COPY_FRAME");
_Static_assert(IOCTL_HILBOX_READ_EVENTS == 0x${code(8, 0).toString(16)}u, "READ_EVENTS");
_Static_assert(IOCTL_HILBOX_MAP_FB == 0x${code(9, 0).toString(16)}u, "MAP_FB");
_Static_assert(IOCTL_HILBOX_UNMAP_FB == 0x${code(10, 0).toString(16)}u, "UNMAP_FB");
_Static_assert(sizeof(struct hilbox_event) == 24, "event");
int main(void) { return 0; }
`);
      for (const cc of ['x86_64-w64-mingw32-gcc']) {
        const r = spawnSync(cc, ['-std=c11', '-Wall', '-Wextra', '-Werror', '-fsyntax-only',
          '-I', join(repo, 'guest-driver', 'windows'), '-I', join(repo, 'guest-driver', 'include'), src], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
