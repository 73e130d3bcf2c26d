/**
 * The Windows driver install, up to the image boundary: the exact commands WindowsGuest's
 * installDriver verb sends through the guest seam (GuestSession) — the whole package uploaded,
 * the root and signer trusted with certutil, pnputil, the device's problem code checked, and on
 * failure the tail of setupapi.dev.log in the error and the artifacts. No Windows can run here,
 * so the session's other end is a scripted stand-in that answers as Windows does; everything on
 * our side of the seam is the product's code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../orchestrator/src/core/errors.ts';
import type { GuestSession } from '../../orchestrator/src/guest/guest.ts';
import { PACKAGE_MANIFEST, WindowsGuest } from '../../orchestrator/src/guest/windows.ts';
import type { ExecResult } from '../../orchestrator/src/ssh/client.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hilbox-winpkg-'));
  for (const f of ['mydrv.sys', 'mydrv.inf', 'mydrv.cat', 'root.cer', 'signer.cer', 'signer.key']) writeFileSync(join(dir, f), f);
  writeFileSync(
    join(dir, PACKAGE_MANIFEST),
    JSON.stringify({ schema: 'hilbox-windows-package/1', sys: 'mydrv.sys', inf: 'mydrv.inf', cat: 'mydrv.cat', rootCert: 'root.cer', signerCert: 'signer.cer', hardwareIds: ['PCI\\VEN_1234&DEV_4842'] }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ok = (stdout = ''): ExecResult => ({ code: 0, signal: null, stdout, stderr: '' });

/** What the stand-in answers, by command; a PowerShell script is decoded so answers can match it. */
function windows(answer: (cmd: string, script?: string) => ExecResult | undefined) {
  const log: string[] = [];
  const uploads: string[] = [];
  const artifacts: Record<string, string> = {};
  let reboots = 0;
  const session: GuestSession = {
    async exec(cmd) {
      const enc = /-EncodedCommand (\S+)$/.exec(cmd)?.[1];
      const script = enc ? Buffer.from(enc, 'base64').toString('utf16le') : undefined;
      log.push(script ? `powershell: ${script}` : cmd);
      return answer(cmd, script) ?? ok();
    },
    async upload(_local, remote) {
      uploads.push(remote);
    },
    async download() {},
    async reboot() {
      reboots++;
      log.push('(reboot)');
    },
    saveArtifact(name, text) {
      artifacts[name] = text;
    },
    scaled: (ms) => ms,
  };
  return { session, log, uploads, artifacts, reboots: () => reboots };
}

const guest = (verifier = false) => new WindowsGuest({ image: '/unused.qcow2', sshUser: 'hilbox', ...(verifier ? { verifier } : {}) });
const SETUPAPI = '>>>  [Device Install (Hardware initiated) - PCI\\VEN_1234&DEV_4842]\r\n!!!  sig: Verifying file against specific (driver signing) class catalog failed! Error = 0x800B0109\r\n<<<  Section end\r\n';

describe('WindowsGuest.installDriver (a package made by hilbox package windows)', () => {
  it('uploads the whole package, trusts root and signer, runs pnputil, checks the problem code', async () => {
    const w = windows((_cmd, script) => (script?.includes('Get-PnpDevice') ? ok('PCI\\VEN_1234&DEV_4842&SUBSYS_48421234&REV_01\\3&1|0|OK\r\n') : undefined));
    const r = await guest().installDriver(w.session, { path: join(dir, 'mydrv.sys') });
    expect(r.code, r.stderr).toBe(0);
    expect(w.uploads.sort()).toEqual(['hilbox-package.json', 'mydrv.cat', 'mydrv.inf', 'mydrv.sys', 'root.cer', 'signer.cer'].map((f) => `C:/hilbox/driver/${f}`));
    expect(w.log).toEqual([
      'if not exist C:\\hilbox\\driver mkdir C:\\hilbox\\driver',
      'certutil -f -addstore Root C:\\hilbox\\driver\\root.cer',
      'certutil -f -addstore TrustedPublisher C:\\hilbox\\driver\\signer.cer',
      'pnputil /add-driver C:\\hilbox\\driver\\mydrv.inf /install',
      expect.stringMatching(/^powershell: \$ids = @\('PCI\\VEN_1234&DEV_4842\*'\); Get-PnpDevice -PresentOnly .*ConfigManagerErrorCode/),
    ]);
  });

  it('a device with a problem code fails the install, naming the code, with the setupapi.dev.log tail kept', async () => {
    const w = windows((_cmd, script) => {
      if (script?.includes('Get-PnpDevice')) return ok('PCI\\VEN_1234&DEV_4842\\3&1|52|Error\r\n');
      if (script?.includes('setupapi.dev.log')) return ok(SETUPAPI);
      return undefined;
    });
    const r = await guest().installDriver(w.session, { path: join(dir, 'mydrv.sys') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/reports problem code 52 \(the driver's signature could not be verified; status Error\)/);
    expect(r.stderr).toContain('Error = 0x800B0109');
    expect(w.artifacts['setupapi.dev.log.tail']).toBe(SETUPAPI);
  });

  it('pnputil refusing the package stops before the problem check, with its words and the log tail', async () => {
    const w = windows((cmd, script) => {
      if (cmd.startsWith('pnputil')) return { code: 1, signal: null, stdout: 'Adding driver package:  mydrv.inf\r\nFailed to add driver package: The third-party INF does not contain digital signature information.\r\n', stderr: '' };
      if (script?.includes('setupapi.dev.log')) return ok(SETUPAPI);
      return undefined;
    });
    const r = await guest().installDriver(w.session, { path: join(dir, 'mydrv.sys') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pnputil \/add-driver failed \(exit 1\): .*does not contain digital signature information/);
    expect(w.log.some((l) => l.includes('Get-PnpDevice'))).toBe(false);
    expect(w.artifacts['setupapi.dev.log.tail']).toBeDefined();
  });

  it('pnputil asking for a reboot (3010) is an install; no device present is a failure naming the IDs', async () => {
    const w = windows((cmd, script) => (cmd.startsWith('pnputil') ? { code: 3010, signal: null, stdout: '', stderr: '' } : script?.includes('Get-PnpDevice') ? ok('') : undefined));
    const r = await guest().installDriver(w.session, { path: join(dir, 'mydrv.sys') });
    expect(r.stderr).toMatch(/^no present device matches PCI\\VEN_1234&DEV_4842/);
  });

  it('with Driver Verifier: verifier, a reboot through the seam, then the setting is checked', async () => {
    const w = windows((cmd, script) => {
      if (script?.includes('Get-PnpDevice')) return ok('PCI\\VEN_1234&DEV_4842\\3&1|0|OK');
      if (cmd.startsWith('verifier /standard')) return { code: 2, signal: null, stdout: '', stderr: '' };
      if (cmd === 'verifier /querysettings') return ok('Verified Drivers:\r\n\r\n  mydrv.sys      Loaded\r\n');
      return undefined;
    });
    const r = await guest(true).installDriver(w.session, { path: join(dir, 'mydrv.sys') });
    expect(r.code, r.stderr).toBe(0);
    expect(w.log.slice(-3)).toEqual(['verifier /standard /driver mydrv.sys', '(reboot)', 'verifier /querysettings']);
  });

  it('without driver.path: the project’s own package, built by npm run build:windows, goes through the same steps', async () => {
    const w = windows((_cmd, script) => (script?.includes('Get-PnpDevice') ? ok('PCI\\VEN_1234&DEV_4842&SUBSYS_48421234&REV_01\\3&1|0|OK') : undefined));
    const r = await guest().installDriver(w.session);
    expect(r.code, r.stderr).toBe(0);
    const names = w.uploads.map((u) => u.replace('C:/hilbox/driver/', ''));
    expect(names).toEqual(expect.arrayContaining(['hilbox.sys', 'hilbox.inf', 'hilbox.cat', 'hilbox-test-ca.cer', 'hilbox-test-signer.cer', 'hilbox-package.json']));
    expect(names.some((n) => n.endsWith('.key'))).toBe(false);
    expect(w.log.slice(1, 4)).toEqual([
      'certutil -f -addstore Root C:\\hilbox\\driver\\hilbox-test-ca.cer',
      'certutil -f -addstore TrustedPublisher C:\\hilbox\\driver\\hilbox-test-signer.cer',
      'pnputil /add-driver C:\\hilbox\\driver\\hilbox.inf /install',
    ]);
    expect(w.log[4]).toContain("'PCI\\VEN_1234&DEV_4842*'");
  }, 240_000);

  it('a driver.path with no package next to it is bad input naming it and the command that makes one', async () => {
    const bare = mkdtempSync(join(dir, 'bare-'));
    writeFileSync(join(bare, 'x.sys'), 'MZ');
    const w = windows(() => undefined);
    const e = await guest().installDriver(w.session, { path: join(bare, 'x.sys') }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(/^driver\.path .*x\.sys: .*: no hilbox-package\.json \(make the package with: hilbox package windows --sys X\.sys --inf X\.inf --out DIR\)$/);
    expect(w.log).toEqual([]);
    const other = await guest().installDriver(w.session, { path: join(dir, 'other.sys') }).catch((err: unknown) => err);
    expect((other as Error).message).toMatch(/the package next to it is for mydrv\.sys/);
  });
});
