/**
 * `hilbox image windows` without a Windows ISO: input validation (exit 2 naming the flag) and
 * the answer media (ISO with autounattend.xml, provision.ps1, authorized_keys) built correctly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { buildAnswerMedia, imageWindowsCommand, validateImageOptions } from '../../orchestrator/src/cli/commands/image.ts';
import type { Output } from '../../orchestrator/src/cli/output.ts';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { runCli } from '../cli/helpers.ts';

const silent: Output = { step() {}, progress() {}, done() {}, warn() {}, info() {}, close() {} };
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'hilbox-imgtest-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cliHasImage = readFileSync(join(repoRoot, 'orchestrator', 'src', 'cli', 'main.ts'), 'utf8').includes("command('image')");

describe('hilbox image windows: validation', () => {
  it('a missing --iso is a usage error (exit 2) naming the flag', async () => {
    const err = await imageWindowsCommand({}, silent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/--iso is required/);
    expect(exitCodeFor(err)).toBe(2);
  });

  it('names the flag for every bad value', () => {
    const iso = join(dir, 'win.iso');
    writeFileSync(iso, 'not really an ISO');
    expect(() => validateImageOptions({ iso: join(dir, 'missing.iso') })).toThrow(/--iso .*no such file/);
    expect(() => validateImageOptions({ iso, size: '40 gigs' })).toThrow(/--size/);
    expect(() => validateImageOptions({ iso, virtioIso: join(dir, 'nope.iso') })).toThrow(/--virtio-iso/);
    expect(() => validateImageOptions({ iso, out: join(dir, 'no-such-dir', 'x.qcow2') })).toThrow(/--out/);
    expect(() => validateImageOptions({ iso, out: iso })).toThrow(/--out .*already exists/);
    expect(() => validateImageOptions({ iso, edition: '0' })).toThrow(/--edition/);
    expect(() => validateImageOptions({ iso, productKey: 'abc' })).toThrow(/--product-key/);
    expect(() => validateImageOptions({ iso, firmware: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd' })).toThrow(/Secure Boot/);
    const ok = validateImageOptions({ iso, out: join(dir, 'w.qcow2') });
    expect(ok).toMatchObject({ size: '40G', user: 'hilbox', editionIndex: 1, firmwareVars: '/usr/share/OVMF/OVMF_VARS_4M.fd' });
  });

  it.runIf(cliHasImage)('the CLI exits 2 and names --iso', async () => {
    const r = await runCli(['image', 'windows']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--iso/);
  });
});

describe('hilbox image windows: the installer VM', () => {
  it('runs through the shared launcher: an ISO that does not boot times out cleanly and no QEMU is left', async () => {
    const iso = join(dir, 'not-bootable.iso');
    writeFileSync(iso, Buffer.alloc(1 << 20));
    const out = join(dir, 'never.qcow2');
    const steps: string[] = [];
    const err = await imageWindowsCommand({ iso, out, size: '2G', memory: '1G', timeoutMinutes: '0.25' }, { ...silent, step: (t) => steps.push(t) }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/the installation did not finish within 0\.25 min/);
    expect(steps.join('\n')).toMatch(/installing Windows from not-bootable\.iso \((KVM|TCG)/);
    // The launcher captured the firmware's serial console into the log the message names.
    expect(existsSync(`${out}.install-serial.log`)).toBe(true);
    const partial = `${out}.partial`;
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(partial));
    expect(left).toEqual([]);
  }, 240_000);
});

describe('hilbox image windows: answer media', () => {
  it('holds autounattend.xml, provision.ps1 and the public key, placeholders filled', async () => {
    const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHilboxTestKeyxxxxxxxxxxxxxxxxxxxxxxxxxxx test@hilbox';
    const iso = await buildAnswerMedia(dir, { user: 'hilbox', password: 'S3cret<&>', editionIndex: 3, publicKey: pub });
    const list = execFileSync('isoinfo', ['-J', '-f', '-i', iso], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    expect(list).toEqual(['/authorized_keys', '/autounattend.xml', '/provision.ps1']);
    const pvd = execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' });
    expect(pvd).toMatch(/Volume id:\s+HILBOX_ANSWERS/);
    const get = (p: string): string => execFileSync('isoinfo', ['-J', '-i', iso, '-x', p], { encoding: 'utf8' });
    const xml = get('/autounattend.xml');
    expect(xml).not.toMatch(/\{\{/);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml) as { unattend: { settings: { '@_pass': string; component: unknown }[] } };
    const passes = doc.unattend.settings.map((s) => s['@_pass']);
    expect(passes).toEqual(['windowsPE', 'specialize', 'oobeSystem']);
    expect(xml).toContain('<Type>EFI</Type>');
    expect(xml).toContain('<Value>3</Value>');
    expect(xml).toContain('S3cret&lt;&amp;&gt;');
    expect(xml).toContain('<SkipMachineOOBE>true</SkipMachineOOBE>');
    const ps1 = get('/provision.ps1');
    expect(ps1.charCodeAt(0)).toBe(0xfeff);
    expect(ps1).toContain('\r\n');
    expect(ps1).toMatch(/testsigning on/);
    expect(ps1).toMatch(/-Profile Any/);
    expect(ps1).toMatch(/administrators_authorized_keys/);
    expect(get('/authorized_keys').trim()).toBe(pub);
  });
});
