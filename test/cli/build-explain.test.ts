/**
 * `hilbox build --explain` against real caches: the one the test run built (up to date), an empty
 * one (a first build), and caches holding the real last builds' records with one input changed
 * (the change is named). Nothing is built: the caches stay as they were.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheRoot } from '../../orchestrator/src/core/paths.ts';
import { ensureQemu } from '../../orchestrator/src/products/ensure.ts';
import { runCli } from './helpers.ts';

const real = cacheRoot();
// The test run's global set-up names its builds in HILBOX_QEMU/HILBOX_GUEST; --explain is about the builds themselves.
const BUILDS = { HILBOX_QEMU: '', HILBOX_GUEST: '' };
const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

function tempCache(): string {
  const t = mkdtempSync(join(tmpdir(), 'hilbox-explain-'));
  temps.push(t);
  return t;
}

/** The record of the QEMU build the test run uses (build.json beside bin/). */
async function realQemuRecord(): Promise<{ dir: string; record: Record<string, unknown> }> {
  const dir = dirname(dirname(await ensureQemu()));
  return { dir, record: JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as Record<string, unknown> };
}

/** The newest guest image manifest of the real cache. */
function realGuestManifest(): Record<string, unknown> {
  const guest = join(real, 'guest');
  const all = readdirSync(guest).filter((n) => n.startsWith('linux-')).flatMap((n) => {
    try {
      return [JSON.parse(readFileSync(join(guest, n, 'manifest.json'), 'utf8')) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  return all.sort((a, b) => String(b['builtAt']).localeCompare(String(a['builtAt'])))[0]!;
}

describe('hilbox build --explain', () => {
  it('says both builds are up to date in the cache the tests built, and builds nothing', async () => {
    const r = await runCli(['build', '--explain'], BUILDS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^QEMU: up to date \(key [0-9a-f]{16}\): nothing to build$/m);
    expect(r.stdout).toMatch(/^guest: up to date \(image linux-[0-9a-f]{16}, kernel \S+\): nothing to build$/m);
  });

  it('an empty cache: a first build of each, and the cache is left empty', async () => {
    const t = tempCache();
    const r = await runCli(['build', '--explain'], { ...BUILDS, HILBOX_CACHE: t });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^QEMU: not built yet .*the first build downloads, configures and compiles everything$/m);
    expect(r.stdout).toMatch(/^guest: image linux-[0-9a-f]{16} is not built and no earlier image exists .*: a first build$/m);
    expect(readdirSync(t)).toEqual([]);
  });

  it('names the device file and the driver file whose change makes a new key', async () => {
    const t = tempCache();
    // QEMU: the real last build's record, with the device source recorded at another hash.
    const { record } = await realQemuRecord();
    const inputs = record['inputs'] as { files: Record<string, string> };
    expect(Object.keys(inputs.files)).toContain('qemu-device/hilbox-pci.c');
    inputs.files['qemu-device/hilbox-pci.c'] = `0000000000000000 -> hw/misc/hilbox-pci.c`;
    const old = join(t, 'qemu', 'feedfacefeedface');
    mkdirSync(join(old, 'bin'), { recursive: true });
    writeFileSync(join(old, 'build.json'), JSON.stringify({ ...record, key: 'feedfacefeedface' }));
    writeFileSync(join(t, 'qemu', 'current'), `${join(old, 'bin', 'qemu-system-x86_64')}\n`);
    mkdirSync(join(t, 'qemu-src'));
    for (const f of readdirSync(join(real, 'qemu-src')).filter((n) => n.endsWith('.dsc'))) copyFileSync(join(real, 'qemu-src', f), join(t, 'qemu-src', f));
    // Guest: the real newest manifest, with the driver source recorded at another hash.
    const m = realGuestManifest();
    const gin = m['inputs'] as Record<string, string>;
    expect(Object.keys(gin)).toContain('guest-driver/linux/hilbox.c');
    gin['guest-driver/linux/hilbox.c'] = '0000000000000000';
    mkdirSync(join(t, 'guest', 'linux-feedfacefeedface'), { recursive: true });
    writeFileSync(join(t, 'guest', 'linux-feedfacefeedface', 'manifest.json'), JSON.stringify({ ...m, key: 'feedfacefeedface'.repeat(4) }));

    const r = await runCli(['build', '--explain'], { ...BUILDS, HILBOX_CACHE: t });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^QEMU: key [0-9a-f]{16} is not built; the last build \(key feedfacefeedface, .*\) differs in:$/m);
    expect(r.stdout).toMatch(/^ {2}qemu-device\/hilbox-pci\.c changed$/m);
    expect(r.stdout).toMatch(/^guest: image linux-[0-9a-f]{16} is not built; the last image \(linux-feedfacefeedface, .*\) differs in:$/m);
    expect(r.stdout).toMatch(/^ {2}guest-driver\/linux\/hilbox\.c changed$/m);
    // exactly the changed inputs, nothing else
    expect(r.stdout.split('\n').filter((l) => l.startsWith('  '))).toHaveLength(2);
  });

  it('a record from before inputs were kept is said to be one', async () => {
    const t = tempCache();
    const { record } = await realQemuRecord();
    const old = join(t, 'qemu', 'feedfacefeedface');
    mkdirSync(join(old, 'bin'), { recursive: true });
    const { inputs: _dropped, ...older } = record;
    writeFileSync(join(old, 'build.json'), JSON.stringify({ ...older, key: 'feedfacefeedface' }));
    writeFileSync(join(t, 'qemu', 'current'), `${join(old, 'bin', 'qemu-system-x86_64')}\n`);
    mkdirSync(join(t, 'qemu-src'));
    for (const f of readdirSync(join(real, 'qemu-src')).filter((n) => n.endsWith('.dsc'))) copyFileSync(join(real, 'qemu-src', f), join(t, 'qemu-src', f));
    const r = await runCli(['build', '--explain', '--only', 'qemu'], { ...BUILDS, HILBOX_CACHE: t });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}the last build recorded no inputs \(built by an older script\)$/m);
    expect(r.stdout).not.toMatch(/^guest:/m); // --only qemu
  });
});
