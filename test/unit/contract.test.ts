/**
 * One contract, three copies that must agree (no QEMU needed):
 *   - qemu-device/SPEC.md                  the human contract (tables of §1, §2, §3, §5, §6, §9),
 *   - guest-driver/include/hilbox_regs.h   the C copy the device and both drivers include,
 *   - orchestrator/src/device/spec.ts      the TypeScript copy the orchestrator and tests use.
 *
 * Every group is enumerated from all three sides, so a register, bit, field or property that
 * exists in one copy only fails as well as a value that differs. Failures are collected per
 * group and shown as a list of "what: SPEC.md …, header …, spec.ts …" lines.
 *
 * Also checked: the duplicates in guest-driver/include/hilbox_uapi.h and the Windows INF's
 * hardware IDs, and that the device and drivers keep no private copy of the header's constants.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as specTs from '../../orchestrator/src/device/spec.ts';
import {
  BAR,
  BUTTON,
  CAPS,
  CONTROL,
  DEFAULT_PROPS,
  EVENT_RECORD_SIZE,
  EV_HEAD_WORDS,
  EV_SOURCE,
  FB_MAX_BYTES,
  FB_MODE,
  FEED_MAGIC,
  FEED_RECORD_SIZE,
  FORMAT_RGB24,
  ID_MAGIC,
  INT,
  PCI_ID,
  PROP_LIMITS,
  REG,
  REG64,
  SPEC_VERSION,
  effectiveStride,
  encodeEventRecord,
  encodeFeedRecord,
  fbBarSize,
  validateProps,
  type DeviceProps,
  type EventRecord,
} from '../../orchestrator/src/device/spec.ts';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';

const read = (rel: string): string => readFileSync(join(repoRoot, rel), 'utf8');
const HEADER_PATH = 'guest-driver/include/hilbox_regs.h';
const SPEC_PATH = 'qemu-device/SPEC.md';

// ---------------------------------------------------------------------------------------------
// C #define parsing

interface Defines {
  /** Every HB_ name with its evaluated value, in file order. */
  values: Map<string, number>;
  /** Names whose value is just another name (`#define HB_REG_FRAME_TS HB_REG_FRAME_TIMESTAMP`). */
  aliases: Map<string, string>;
  /** Lines that looked like a #define of a wanted name but could not be read. */
  unreadable: string[];
  /** Names defined more than once. */
  duplicates: string[];
}

/** Evaluates a C constant expression of integer literals, earlier names and | ^ & << >> + - * / ~ ( ). */
function evalC(expr: string, env: ReadonlyMap<string, number>): number {
  const tokens: string[] = [];
  const re = /\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(<<|>>|[()|&^~+\-*/]))/y;
  let pos = 0;
  expr = expr.trim();
  while (pos < expr.length) {
    re.lastIndex = pos;
    const m = re.exec(expr);
    if (!m) throw new Error(`cannot read "${expr.slice(pos)}"`);
    pos = re.lastIndex;
    if (m[1] !== undefined) tokens.push(String(BigInt(m[1])));
    else if (m[2] !== undefined) {
      const v = env.get(m[2]);
      if (v === undefined) throw new Error(`unknown name ${m[2]}`);
      tokens.push(String(v));
    } else tokens.push(m[3]!);
  }
  let i = 0;
  const BIN: Record<string, [number, (a: bigint, b: bigint) => bigint]> = {
    '|': [1, (a, b) => a | b], '^': [2, (a, b) => a ^ b], '&': [3, (a, b) => a & b],
    '<<': [4, (a, b) => a << b], '>>': [4, (a, b) => a >> b],
    '+': [5, (a, b) => a + b], '-': [5, (a, b) => a - b], '*': [6, (a, b) => a * b], '/': [6, (a, b) => a / b],
  };
  const primary = (): bigint => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`unexpected end of "${expr}"`);
    if (t === '(') {
      const v = binary(0);
      if (tokens[i++] !== ')') throw new Error(`missing ) in "${expr}"`);
      return v;
    }
    if (t === '~') return ~primary() & 0xffffffffn;
    if (t === '-') return -primary();
    if (/^\d+$/.test(t)) return BigInt(t);
    throw new Error(`unexpected "${t}" in "${expr}"`);
  };
  const binary = (minPrec: number): bigint => {
    let left = primary();
    for (;;) {
      const op = BIN[tokens[i] ?? ''];
      if (!op || op[0] <= minPrec) return left;
      i++;
      left = op[1](left, binary(op[0]));
    }
  };
  const v = binary(0);
  if (i !== tokens.length) throw new Error(`trailing tokens in "${expr}"`);
  if (v < 0n || v > 0xffffffffn) throw new Error(`"${expr}" = ${v} is not a 32-bit unsigned value`);
  return Number(v);
}

/** Reads the `#define NAME value` lines of a C header whose name matches `wanted`. */
function parseDefines(text: string, wanted: RegExp): Defines {
  const out: Defines = { values: new Map(), aliases: new Map(), unreadable: [], duplicates: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, '').trimEnd();
    const m = /^\s*#\s*define\s+([A-Za-z_]\w*)(\(?)\s*(.*)$/.exec(line);
    if (!m || !wanted.test(m[1]!)) continue;
    const [, name, paren, value] = m as unknown as [string, string, string, string];
    if (paren || value === '' || value.endsWith('\\')) {
      out.unreadable.push(raw.trim());
      continue;
    }
    if (out.values.has(name)) out.duplicates.push(name);
    try {
      out.values.set(name, evalC(value, out.values));
      if (/^[A-Za-z_]\w*$/.test(value.trim())) out.aliases.set(name, value.trim());
    } catch (e) {
      out.unreadable.push(`${raw.trim()}  (${(e as Error).message})`);
    }
  }
  return out;
}

const header = parseDefines(read(HEADER_PATH), /^HB_/);
const hv = (name: string): number | undefined => header.values.get(name);
/** Non-alias header names starting with `prefix`, keyed by the rest of the name. */
function headerGroup(prefix: string, exclude: readonly string[] = []): Map<string, number> {
  const m = new Map<string, number>();
  for (const [name, v] of header.values) {
    if (!name.startsWith(prefix) || header.aliases.has(name)) continue;
    const rest = name.slice(prefix.length);
    if (!exclude.includes(rest)) m.set(rest, v);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// SPEC.md parsing

const specText = read(SPEC_PATH);

/** Text of "## n. …" up to the next "## ". */
function section(n: number): string {
  const m = new RegExp(`^## ${n}\\. .*$`, 'm').exec(specText);
  if (!m) throw new Error(`SPEC.md has no section ${n}`);
  const rest = specText.slice(m.index);
  const next = rest.slice(3).search(/^## /m);
  return next < 0 ? rest : rest.slice(0, next + 3);
}

/** The first markdown table in `text` whose header row starts with `firstColumn`: rows of cells. */
function table(text: string, firstColumn: string): { head: string[]; rows: string[][] } {
  const lines = text.split('\n');
  const cells = (l: string) => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  const start = lines.findIndex((l) => l.trim().startsWith('|') && cells(l)[0] === firstColumn);
  if (start < 0) throw new Error(`no table starting with column "${firstColumn}"`);
  const head = cells(lines[start]!);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) {
    const r = cells(lines[i]!);
    if (r.length !== head.length) throw new Error(`SPEC.md table row has ${r.length} cells, not ${head.length}: ${lines[i]}`);
    rows.push(r);
  }
  return { head, rows };
}

const unquote = (s: string) => s.replace(/`/g, '').trim();
const num = (s: string): number => {
  const t = unquote(s);
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(t)) throw new Error(`not a number: "${s}"`);
  return Number(t);
};
/** "bit0 `FB`, bit1 `MOUSE`" (or "bit0 left, …") → { FB: 1, MOUSE: 2 }. */
function bits(text: string, quoted = true): Map<string, number> {
  const re = quoted ? /bit(\d+) `(\w+)`/g : /bit(\d+) (\w+)/g;
  return new Map([...text.matchAll(re)].map((m) => [m[2]!, (1 << Number(m[1])) >>> 0]));
}
/** "0 = direct, 1 = mmio" → { direct: 0, mmio: 1 }. */
function enumValues(text: string): Map<string, number> {
  return new Map([...text.matchAll(/(\d+) = `?(\w+)`?/g)].map((m) => [m[2]!, Number(m[1])]));
}
const SIZE_OF: Record<string, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8, i64: 8 };

interface SpecReg { offset: number; width: string; access: string; reset: string; meaning: string }
const specRegs = new Map<string, SpecReg>();
{
  const t = table(section(3), 'offset');
  if (t.head.join() !== 'offset,name,width,access,reset,meaning') throw new Error(`SPEC.md §3 table columns: ${t.head.join(', ')}`);
  for (const [offset, name, width, access, reset, meaning] of t.rows as [string, string, string, string, string, string][]) {
    specRegs.set(unquote(name), { offset: num(offset), width, access, reset, meaning });
  }
}
const specReg = (name: string): SpecReg => {
  const r = specRegs.get(name);
  if (!r) throw new Error(`SPEC.md §3 has no register ${name}`);
  return r;
};

// §9 properties -------------------------------------------------------------------------------
interface SpecProp { type: string; def: string; allowed: string }
const specProps = new Map<string, SpecProp>(
  table(section(9), 'property').rows.map(([n, type, def, allowed]) => [unquote(n!), { type: type!, def: def!, allowed: allowed! }]),
);
// §11 faults and their run-time parameters
const specFaults = table(section(11), 'fault').rows.map(([n]) => unquote(n!));
const specFaultParams = new Map<string, SpecProp>(
  table(section(11), 'parameter').rows.map(([n, type, def, allowed]) => [unquote(n!), { type: type!, def: def!, allowed: allowed! }]),
);
/** min, max, and (for "0 or a … b") the smallest non-zero value, from the "allowed" column. */
function specRange(allowed: string): { min?: number; max?: number; minNonZero?: string } {
  const r = /(\d+(?:\s*×\s*\w+)?)\s*…\s*(\d+)/.exec(allowed);
  if (!r) return {};
  const lo = r[1]!.replace(/\s+/g, ' ');
  const zeroOr = /^0\b(?!\s*…)/.test(allowed.trim());
  return zeroOr ? { min: 0, max: Number(r[2]), minNonZero: lo } : { min: Number(lo), max: Number(r[2]) };
}


// ---------------------------------------------------------------------------------------------
// comparing

const hex = (v: number | undefined) => (v === undefined ? 'missing' : `0x${v.toString(16)}`);
type Sources = Record<string, number | undefined>;
/** Records a problem unless every source has the same value (missing counts as different). */
function same(problems: string[], what: string, sources: Sources, fmt: (v: number | undefined) => string = hex): void {
  const vals = Object.values(sources);
  if (vals.every((v) => v !== undefined && v === vals[0])) return;
  problems.push(`${what}: ${Object.entries(sources).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
}
const dec = (v: number | undefined) => (v === undefined ? 'missing' : String(v));
const union = (...keys: Iterable<string>[]) => [...new Set(keys.flatMap((k) => [...k]))];
/** Compares three name → value maps in both directions. */
function sameGroup(problems: string[], what: string, groups: Record<string, ReadonlyMap<string, number>>, fmt = hex): void {
  for (const key of union(...Object.values(groups).map((g) => g.keys()))) {
    same(problems, `${what} ${key}`, Object.fromEntries(Object.entries(groups).map(([src, g]) => [src, g.get(key)])), fmt);
  }
}
const obj = (o: object) => new Map(Object.entries(o) as [string, number][]);
const snakeToCamel = (s: string) => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const propMacro = (prop: string) => prop.toUpperCase().replace(/-/g, '_');

// ---------------------------------------------------------------------------------------------

describe('contract: SPEC.md, hilbox_regs.h and spec.ts agree', () => {
  it('the header is plain "#define HB_NAME value" lines the test can read', () => {
    expect(header.unreadable, 'unreadable #define lines').toEqual([]);
    expect(header.duplicates, 'names defined twice').toEqual([]);
    expect(header.values.size).toBeGreaterThan(100);
    expect(read(HEADER_PATH), 'no includes in the shared header').not.toMatch(/^\s*#\s*include/m);
  });

  it('§1 PCI identity', () => {
    const p: string[] = [];
    const rows = new Map(table(section(1), 'field').rows.map(([f, v]) => [f!, v!]));
    const cell = (f: string) => rows.get(f) ?? '';
    const subsys = [...cell('subsystem vendor / device').matchAll(/`(0x[0-9a-fA-F]+)`/g)].map((m) => Number(m[1]));
    const pin = /^INT([A-D])$/.exec(cell('interrupt pin').trim());
    const fromSpec = new Map<string, number>([
      ['vendorId', num(cell('vendor ID').split(' ')[0]!)],
      ['deviceId', num(cell('device ID').split(' ')[0]!)],
      ['revision', num(cell('revision'))],
      ['classCode', num(cell('class code').split(' ')[0]!)],
      ['subsystemVendorId', subsys[0]!],
      ['subsystemId', subsys[1]!],
      ['interruptPin', pin ? pin[1]!.charCodeAt(0) - 64 : NaN],
    ]);
    const fromHeader = new Map([...headerGroup('HB_PCI_', ['MSI_VECTORS'])].map(([k, v]) => [snakeToCamel(k), v]));
    sameGroup(p, 'PCI', { 'SPEC.md': fromSpec, header: fromHeader, 'spec.ts': obj(PCI_ID) });
    // Not in spec.ts: the MSI vector count.
    same(p, 'PCI MSI vectors', { 'SPEC.md': Number(/MSI \((\d+) vector/.exec(cell('capabilities'))?.[1]), header: hv('HB_PCI_MSI_VECTORS') }, dec);
    expect(p).toEqual([]);
  });

  it('§2 BARs', () => {
    const p: string[] = [];
    const rows = table(section(2), 'BAR').rows;
    const bar = (content: RegExp) => rows.find((r) => content.test(r[3] ?? ''));
    const kib = (s: string) => Number(/(\d+) KiB/.exec(s)?.[1]) * 1024;
    const regs = bar(/register block/), fb = bar(/framebuffer/);
    same(p, 'BAR number of the registers', { 'SPEC.md': Number(regs?.[0]?.replace('BAR', '')), header: hv('HB_BAR_REGS'), 'spec.ts': BAR.regs }, dec);
    same(p, 'BAR number of the framebuffer', { 'SPEC.md': Number(fb?.[0]?.replace('BAR', '')), header: hv('HB_BAR_FB'), 'spec.ts': BAR.fb }, dec);
    same(p, 'BAR0 size', { 'SPEC.md': kib(regs?.[2] ?? ''), header: hv('HB_REGS_SIZE'), 'spec.ts': BAR.regsSize });
    same(p, 'BAR2 minimum size', { 'SPEC.md': kib(/min ([^)]*)/.exec(fb?.[2] ?? '')?.[1] ?? ''), header: hv('HB_FB_BAR_MIN_SIZE'), 'spec.ts': BAR.fbMinSize });
    same(p, 'BAR2 size of a tiny framebuffer (spec.ts fbBarSize)', { header: hv('HB_FB_BAR_MIN_SIZE'), 'spec.ts': fbBarSize({ width: 16, height: 16, stride: 0 }) });
    same(p, 'header BAR names', { expected: 2, header: headerGroup('HB_BAR_').size }, dec);
    expect(p).toEqual([]);
  });

  it('§3 register names and offsets, in all three directions', () => {
    const p: string[] = [];
    sameGroup(p, 'register', {
      'SPEC.md': new Map([...specRegs].map(([n, r]) => [n, r.offset])),
      header: headerGroup('HB_REG_'),
      'spec.ts': obj(REG),
    });
    for (const [alias, target] of header.aliases) {
      if (alias.startsWith('HB_REG_') && !(target.startsWith('HB_REG_') && specRegs.has(target.slice(7)))) {
        p.push(`header alias ${alias} -> ${target} is not a SPEC register`);
      }
    }
    // Widths: 64-bit registers and the EV_HEAD words.
    for (const [name, r] of specRegs) {
      const is64 = r.width === '64';
      if (is64 !== REG64.has(name as keyof typeof REG)) p.push(`register ${name}: SPEC.md width ${r.width}, spec.ts REG64 ${REG64.has(name as keyof typeof REG) ? 'has' : 'lacks'} it`);
      if (is64 && r.offset % 8 !== 0) p.push(`register ${name}: 64-bit at ${hex(r.offset)}, not 8-byte aligned`);
      if (r.offset % 4 !== 0) p.push(`register ${name}: offset ${hex(r.offset)} not 4-byte aligned`);
      if (r.offset >= (hv('HB_REGS_SIZE') ?? 0)) p.push(`register ${name}: offset ${hex(r.offset)} outside BAR0`);
    }
    for (const n of REG64) if (!specRegs.has(n)) p.push(`spec.ts REG64 has ${n}, SPEC.md has no such register`);
    same(p, 'EV_HEAD words', { 'SPEC.md': Number(/^(\d+)×32$/.exec(specReg('EV_HEAD').width)?.[1]), header: hv('HB_EV_HEAD_WORDS'), 'spec.ts': EV_HEAD_WORDS }, dec);
    // No two registers overlap.
    const extent = (r: SpecReg) => (r.width === '64' ? 8 : /^(\d+)×32$/.test(r.width) ? 4 * Number(r.width.split('×')[0]) : 4);
    const sorted = [...specRegs].sort((a, b) => a[1].offset - b[1].offset);
    for (let i = 1; i < sorted.length; i++) {
      const [pn, pr] = sorted[i - 1]!, [n, r] = sorted[i]!;
      if (pr.offset + extent(pr) > r.offset) p.push(`registers ${pn} and ${n} overlap`);
    }
    expect(p).toEqual([]);
  });

  it('§3 ID, VERSION and FORMAT values', () => {
    const p: string[] = [];
    const id = specReg('ID');
    same(p, 'ID reset value', { 'SPEC.md': num(id.reset), header: hv('HB_ID_MAGIC'), 'spec.ts': ID_MAGIC });
    const idBytes = Buffer.alloc(4);
    idBytes.writeUInt32LE(hv('HB_ID_MAGIC') ?? 0);
    if (!id.meaning.includes(`"${idBytes.toString('latin1')}"`)) p.push(`ID: header value reads "${idBytes.toString('latin1')}" in memory, SPEC.md says ${id.meaning}`);

    const ver = specReg('VERSION');
    same(p, 'VERSION reset value', { 'SPEC.md': num(ver.reset), header: hv('HB_VERSION'), 'spec.ts': SPEC_VERSION });
    const title = /^Version (\d+)\.(\d+) \(register `VERSION` = `(0x[0-9a-fA-F]+)`\)/m.exec(specText);
    same(p, 'VERSION in the SPEC.md preamble', { 'SPEC.md': title ? Number(title[3]) : undefined, header: hv('HB_VERSION') });
    same(p, 'VERSION major', { 'SPEC.md': Number(title?.[1]), header: hv('HB_VERSION_MAJOR') }, dec);
    same(p, 'VERSION minor', { 'SPEC.md': Number(title?.[2]), header: hv('HB_VERSION_MINOR') }, dec);
    same(p, 'VERSION major shift', { 'SPEC.md': Number(/bits 31\.\.(\d+) major/.exec(ver.meaning)?.[1]), header: hv('HB_VERSION_MAJOR_SHIFT') }, dec);

    const fmt = specReg('FORMAT');
    same(p, 'FORMAT reset value', { 'SPEC.md': num(fmt.reset), header: hv('HB_FORMAT_RGB24'), 'spec.ts': FORMAT_RGB24 }, dec);
    same(p, 'FORMAT value of RGB24', { 'SPEC.md': enumValues(fmt.meaning).get('RGB24'), header: hv('HB_FORMAT_RGB24'), 'spec.ts': FORMAT_RGB24 }, dec);
    same(p, 'RGB24 bytes per pixel', {
      'SPEC.md': Number(/(\d+) bytes per pixel/.exec(fmt.meaning)?.[1]),
      header: hv('HB_RGB24_BYTES_PER_PIXEL'),
      'spec.ts (effectiveStride / width)': effectiveStride({ width: 1000, stride: 0 }) / 1000,
    }, dec);
    expect(p).toEqual([]);
  });

  it('§3 register bits and values: CAPS, CONTROL, INT_*, FB_MODE', () => {
    const p: string[] = [];
    sameGroup(p, 'CAPS bit', { 'SPEC.md': bits(specReg('CAPS').meaning), header: headerGroup('HB_CAP_'), 'spec.ts': obj(CAPS) });
    sameGroup(p, 'CONTROL bit', { 'SPEC.md': bits(specReg('CONTROL').meaning), header: headerGroup('HB_CONTROL_'), 'spec.ts': obj(CONTROL) });
    sameGroup(p, 'INT bit', { 'SPEC.md': bits(specReg('INT_STATUS').meaning), header: headerGroup('HB_INT_', ['ALL']), 'spec.ts': obj(INT) });
    const all = Object.values(INT).reduce((a, b) => a | b, 0);
    const maskBits = /bits other than (\d+)\.\.(\d+) read 0/.exec(specReg('INT_MASK').meaning);
    const specMask = maskBits ? ((2 ** (Number(maskBits[2]) + 1)) - 2 ** Number(maskBits[1])) : undefined;
    same(p, 'INT all bits (INT_MASK writable bits)', { 'SPEC.md': specMask, header: hv('HB_INT_ALL'), 'spec.ts (OR of INT)': all });
    const fbModeHeader = new Map([...headerGroup('HB_FB_MODE_')].map(([k, v]) => [k.toLowerCase(), v]));
    sameGroup(p, 'FB_MODE value', { 'SPEC.md': enumValues(specReg('FB_MODE').meaning), header: fbModeHeader, 'spec.ts': obj(FB_MODE) }, dec);
    expect(p).toEqual([]);
  });

  it('§5 event record: size, field offsets, buttons, sources, flags', () => {
    const p: string[] = [];
    const sec = section(5);
    const rows = table(sec, 'offset').rows;
    const specOff = new Map(rows.map(([o, , f]) => [unquote(f!), num(o!)]));
    const specSize = new Map(rows.map(([, t, f]) => [unquote(f!), SIZE_OF[t!] ?? NaN]));
    const headerOff = new Map([...headerGroup('HB_EV_OFF_')].map(([k, v]) => [k.toLowerCase(), v]));
    // spec.ts: where encodeEventRecord puts each field (one distinctive non-zero field at a time).
    const tsOff = new Map<string, number>();
    const zero: EventRecord = { seq: 0n, timestamp: 0n, dx: 0, dy: 0, wheel: 0, buttons: 0, source: 0, flags: 0 };
    for (const f of Object.keys(zero) as (keyof EventRecord)[]) {
      const bytes = encodeEventRecord({ ...zero, [f]: typeof zero[f] === 'bigint' ? 0x5aa5n : 0x5a });
      const at = bytes.findIndex((b) => b !== 0);
      tsOff.set(f, at);
    }
    sameGroup(p, 'event field offset', { 'SPEC.md': specOff, header: headerOff, 'spec.ts (encodeEventRecord)': tsOff }, dec);
    const total = [...specOff].reduce((end, [f, o]) => Math.max(end, o + (specSize.get(f) ?? 0)), 0);
    same(p, 'event record size', {
      'SPEC.md heading': Number(/^## 5\. Event record \((\d+) bytes\)/m.exec(sec)?.[1]),
      'SPEC.md table': total,
      header: hv('HB_EV_RECORD_SIZE'),
      'spec.ts': EVENT_RECORD_SIZE,
      'spec.ts (encodeEventRecord)': encodeEventRecord(zero).length,
    }, dec);
    same(p, 'EV_HEAD words × 4', { header: (hv('HB_EV_HEAD_WORDS') ?? 0) * 4, 'record size': hv('HB_EV_RECORD_SIZE') }, dec);

    const meaning = (field: string) => rows.find((r) => unquote(r[2]!) === field)?.[3] ?? '';
    const lower = (m: Map<string, number>) => new Map([...m].map(([k, v]) => [k.toLowerCase(), v]));
    sameGroup(p, 'button bit', { 'SPEC.md': bits(meaning('buttons'), false), header: lower(headerGroup('HB_EV_BUTTON_')), 'spec.ts': obj(BUTTON) });

    const sourceHeader = lower(headerGroup('HB_EV_SOURCE_'));
    const names = union(sourceHeader.keys(), Object.keys(EV_SOURCE));
    const sourceSpec = new Map<string, number>();
    for (const part of meaning('source').split(',')) {
      const m = /^\s*(\d+) (.*)$/.exec(part);
      const key = m && names.find((n) => new RegExp(`\\b${n}\\b`, 'i').test(m[2]!));
      if (!m || !key) p.push(`SPEC.md event source "${part.trim()}" has no constant in the header or spec.ts`);
      else sourceSpec.set(key, Number(m[1]));
    }
    sameGroup(p, 'event source', { 'SPEC.md': sourceSpec, header: sourceHeader, 'spec.ts': obj(EV_SOURCE) }, dec);

    const tsFlags = new Map(Object.entries(specTs).filter(([k]) => k.startsWith('EV_FLAG_')).map(([k, v]) => [k.slice(8), v as number]));
    sameGroup(p, 'event flag', { 'SPEC.md': bits(meaning('flags')), header: headerGroup('HB_EV_FLAG_'), 'spec.ts': tsFlags });
    expect(p).toEqual([]);
  });

  it('§6 host feed record: size, magic, field offsets', () => {
    const p: string[] = [];
    const sec = section(6);
    const rows = table(sec, 'offset').rows;
    const specOff = new Map<string, number>();
    const specSize = new Map<string, number>();
    for (const [o, t, f] of rows as [string, string, string][]) {
      const name = /^(\w+)/.exec(f)?.[1] ?? f;
      if (name !== 'reserved') specOff.set(name, num(o));
      specSize.set(`${name}@${o}`, num(o) + (SIZE_OF[t] ?? NaN));
    }
    const magicCell = rows.find((r) => /^magic/.test(r[2]!))?.[2] ?? '';
    same(p, 'feed magic', { 'SPEC.md': Number(/`(0x[0-9a-fA-F]+)`/.exec(magicCell)?.[1]), header: hv('HB_FEED_MAGIC'), 'spec.ts': FEED_MAGIC });
    const magicBytes = Buffer.alloc(4);
    magicBytes.writeUInt32LE(hv('HB_FEED_MAGIC') ?? 0);
    if (!magicCell.includes(`"${magicBytes.toString('latin1')}"`)) p.push(`feed magic: header value reads "${magicBytes.toString('latin1')}" in memory, SPEC.md says ${magicCell}`);
    const headerOff = new Map([...headerGroup('HB_FEED_OFF_')].map(([k, v]) => [k.toLowerCase(), v]));
    const tsOff = new Map<string, number>([['magic', -1]]);
    const bytes0 = encodeFeedRecord({});
    const m0 = Buffer.from(bytes0);
    for (let o = 0; o + 4 <= m0.length; o++) if (m0.readUInt32LE(o) === FEED_MAGIC) { tsOff.set('magic', o); break; }
    for (const f of ['dx', 'dy', 'wheel', 'buttons', 'flags'] as const) {
      const b = encodeFeedRecord({ [f]: 0x5a });
      tsOff.set(f, b.findIndex((x, i) => x !== bytes0[i]));
    }
    sameGroup(p, 'feed field offset', { 'SPEC.md': specOff, header: headerOff, 'spec.ts (encodeFeedRecord)': tsOff }, dec);
    same(p, 'feed record size', {
      'SPEC.md text': Number(/(\d+)-byte records/.exec(sec)?.[1]),
      'SPEC.md table': Math.max(...specSize.values()),
      header: hv('HB_FEED_RECORD_SIZE'),
      'spec.ts': FEED_RECORD_SIZE,
      'spec.ts (encodeFeedRecord)': bytes0.length,
    }, dec);
    expect(p).toEqual([]);
  });

  it('§9 property names, ranges and defaults, in all three directions', () => {
    const p: string[] = [];
    const uintProps = [...specProps].filter(([, s]) => s.type === 'uint32').map(([n]) => n);
    const fromSpec = { min: new Map<string, number>(), max: new Map<string, number>(), def: new Map<string, number>() };
    for (const n of uintProps) {
      const s = specProps.get(n)!;
      const r = specRange(s.allowed);
      if (r.min !== undefined) fromSpec.min.set(n, r.min);
      if (r.max !== undefined) fromSpec.max.set(n, r.max);
      fromSpec.def.set(n, Number(/^(\d+)/.exec(s.def)?.[1]));
    }
    const fromHeader = { min: new Map<string, number>(), max: new Map<string, number>(), def: new Map<string, number>() };
    const byMacro = new Map([...specProps.keys()].map((n) => [propMacro(n), n]));
    const faultMacros = new Set([...specFaultParams.keys()].map(propMacro));
    for (const [rest, v] of headerGroup('HB_PROP_')) {
      const m = /^(.*)_(MIN_NONZERO|MIN|MAX|DEFAULT)$/.exec(rest);
      if (m && faultMacros.has(m[1]!)) continue; // §11, compared in its own test
      const prop = m && byMacro.get(m[1]!);
      if (!m || !prop) { p.push(`header HB_PROP_${rest} names no SPEC.md §9 property (HB_PROP_<NAME>_{MIN,MAX,DEFAULT,MIN_NONZERO})`); continue; }
      const specP = specProps.get(prop)!;
      if (m[2] === 'MIN_NONZERO') {
        same(p, `property ${prop} smallest non-zero value`, { 'SPEC.md': Number(specRange(specP.allowed).minNonZero), header: v }, dec);
      } else if (m[2] === 'DEFAULT' && specP.type !== 'uint32') {
        continue; // compared below
      } else {
        fromHeader[m[2] === 'MIN' ? 'min' : m[2] === 'MAX' ? 'max' : 'def'].set(prop, v);
      }
    }
    const tsLimits = Object.entries(PROP_LIMITS) as [string, { min: number; max: number }][];
    sameGroup(p, 'property minimum', { 'SPEC.md': fromSpec.min, header: fromHeader.min, 'spec.ts PROP_LIMITS': new Map(tsLimits.map(([n, l]) => [n, l.min])) }, dec);
    sameGroup(p, 'property maximum', { 'SPEC.md': fromSpec.max, header: fromHeader.max, 'spec.ts PROP_LIMITS': new Map(tsLimits.map(([n, l]) => [n, l.max])) }, dec);
    const tsDefaults = new Map(Object.entries(DEFAULT_PROPS).filter(([, v]) => typeof v === 'number') as [string, number][]);
    sameGroup(p, 'property default', { 'SPEC.md': fromSpec.def, header: fromHeader.def, 'spec.ts DEFAULT_PROPS': tsDefaults }, dec);

    // Non-numeric properties.
    for (const [n, s] of specProps) {
      if (s.type === 'uint32') continue;
      const macro = `HB_PROP_${propMacro(n)}_DEFAULT`;
      const tsDef = (DEFAULT_PROPS as Record<string, unknown>)[n];
      if (s.type === 'bool') {
        const d = s.def === 'on' ? 1 : s.def === 'off' ? 0 : undefined;
        same(p, `property ${n} default`, { 'SPEC.md': d, header: hv(macro), 'spec.ts DEFAULT_PROPS': tsDef === undefined ? undefined : Number(tsDef) }, dec);
      } else if (n === 'fb-mode') {
        const modes = new Map(Object.entries(FB_MODE));
        same(p, `property ${n} default`, { 'SPEC.md': modes.get(unquote(s.def)), header: hv(macro), 'spec.ts DEFAULT_PROPS': modes.get(String(tsDef)) }, dec);
        const allowed = [...s.allowed.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
        if (allowed.join() !== [...modes.keys()].sort().join()) p.push(`property fb-mode: SPEC.md allows ${allowed.join(', ')}, spec.ts FB_MODE has ${[...modes.keys()].join(', ')}`);
      } else if (s.def === 'none') {
        if (tsDef !== undefined) p.push(`property ${n}: SPEC.md default none, spec.ts DEFAULT_PROPS has ${String(tsDef)}`);
        if (hv(macro) !== undefined) p.push(`property ${n}: SPEC.md default none, header has ${macro}`);
      } else {
        p.push(`property ${n}: type ${s.type} not checked by this test (teach it)`);
      }
    }
    for (const n of Object.keys(DEFAULT_PROPS)) if (!specProps.has(n)) p.push(`spec.ts DEFAULT_PROPS has ${n}, SPEC.md §9 has no such property`);

    // stride: the non-zero minimum is bytes-per-pixel × width; stride × height is bounded.
    const stride = specRange(specProps.get('stride')?.allowed ?? '');
    if (stride.minNonZero !== `${hv('HB_RGB24_BYTES_PER_PIXEL')} × width`) p.push(`stride: SPEC.md non-zero minimum "${stride.minNonZero}", header HB_RGB24_BYTES_PER_PIXEL ${hv('HB_RGB24_BYTES_PER_PIXEL')} × width`);
    const mib = /≤\s*(\d+)\s*MiB/.exec(specProps.get('stride')?.allowed ?? '');
    same(p, 'framebuffer max bytes (stride × height)', { 'SPEC.md': mib ? Number(mib[1]) * 2 ** 20 : undefined, header: hv('HB_FB_MAX_BYTES'), 'spec.ts': FB_MAX_BYTES }, dec);
    const perS = /\(`HB_FB_MAX_BYTES_PER_S`, (\d+) MiB\/s/.exec(specText);
    same(p, 'direct-mode render rate (stride × height × fps)', { 'SPEC.md': perS ? Number(perS[1]) * 2 ** 20 : undefined, header: hv('HB_FB_MAX_BYTES_PER_S'), 'spec.ts': specTs.FB_MAX_BYTES_PER_S }, dec);
    expect(p).toEqual([]);
  });

  it('§11 fault names and parameters, in all three directions (and the device\'s own table and message)', () => {
    const p: string[] = [];
    const device = read('qemu-device/hilbox-pci.c');
    const cNames = [...(/hilbox_fault_names\[[^\]]*\]\s*=\s*\{([^}]*)\}/.exec(device)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    // the refusal's C string literals, joined, up to the argument list
    const message = /fault '%s' is not allowed; allowed: ((?:[^"]|"\s*")*)",\s*value\)/.exec(device);
    const cMessage = message ? message[1]!.replace(/"\s*"/g, '').split(/,\s*/) : [];
    for (const [what, names] of [['spec.ts FAULTS', [...specTs.FAULTS]], ['hilbox-pci.c hilbox_fault_names', cNames], ['hilbox-pci.c refusal message', cMessage]] as const) {
      if (names.join() !== specFaults.join()) p.push(`faults: SPEC.md §11 has ${specFaults.join(', ')}, ${what} has ${names.join(', ')}`);
    }
    const tsParams = specTs.FAULT_PARAMS as Record<string, { min: number; max: number; default: number }>;
    for (const [n, s] of specFaultParams) {
      const r = specRange(s.allowed);
      const ts = tsParams[n];
      const macro = `HB_PROP_${propMacro(n)}`;
      same(p, `fault parameter ${n} minimum`, { 'SPEC.md': r.min, header: hv(`${macro}_MIN`), 'spec.ts FAULT_PARAMS': ts?.min }, dec);
      same(p, `fault parameter ${n} maximum`, { 'SPEC.md': r.max, header: hv(`${macro}_MAX`), 'spec.ts FAULT_PARAMS': ts?.max }, dec);
      same(p, `fault parameter ${n} default`, { 'SPEC.md': Number(s.def), header: hv(`${macro}_DEFAULT`), 'spec.ts FAULT_PARAMS': ts?.default }, dec);
      if (!device.includes(`${macro}_MAX`) || !device.includes(`${macro}_DEFAULT`)) p.push(`hilbox-pci.c does not take ${n}'s limit and default from the header`);
    }
    for (const n of Object.keys(tsParams)) if (!specFaultParams.has(n)) p.push(`spec.ts FAULT_PARAMS has ${n}, SPEC.md §11 has no such parameter`);
    expect(p).toEqual([]);
  });

  it('§9 spec.ts validateProps accepts exactly the header ranges', () => {
    const p: string[] = [];
    const H = (n: string) => {
      const v = hv(n);
      if (v === undefined) throw new Error(`header lacks ${n}`);
      return v;
    };
    const check = (what: string, props: Partial<DeviceProps>, ok: boolean) => {
      const r = validateProps(props);
      if ((r === undefined) !== ok) p.push(`validateProps(${JSON.stringify(props)}) ${ok ? 'rejects' : 'accepts'} it (${what}): ${r ? `${r.property}: ${r.message}` : 'valid'}`);
    };
    // Each property at its limits with the others small enough that no cross rule (stride ≥ 3 ×
    // width, stride × height, the direct-mode render rate) decides instead.
    const small: Partial<DeviceProps> = { width: 16, height: 16, fps: 1 };
    const ctx: Record<string, Partial<DeviceProps>> = { 'mmio-latency-ns': { ...small, 'fb-mode': 'mmio' }, stride: small, width: { height: 16, fps: 1 }, height: { width: 16, fps: 1 }, fps: { width: 16, height: 16 } };
    for (const name of Object.keys(PROP_LIMITS) as (keyof typeof PROP_LIMITS)[]) {
      const m = propMacro(name);
      const min = H(`HB_PROP_${m}_MIN`), max = H(`HB_PROP_${m}_MAX`);
      const base = ctx[name] ?? {};
      check(`${name} at the header minimum`, { ...base, [name]: min }, true);
      check(`${name} at the header maximum`, { ...base, [name]: max }, true);
      check(`${name} above the header maximum`, { ...base, [name]: max + 1 }, false);
      if (min > 0) check(`${name} below the header minimum`, { ...base, [name]: min - 1 }, false);
      const nz = hv(`HB_PROP_${m}_MIN_NONZERO`);
      if (nz !== undefined) {
        if (name === 'mouse-rate-hz' && specTs.MOUSE_RATE_MIN !== nz) p.push(`mouse-rate-hz non-zero minimum: header ${nz}, spec.ts MOUSE_RATE_MIN ${specTs.MOUSE_RATE_MIN}`);
        check(`${name} at the header non-zero minimum`, { ...base, [name]: nz }, true);
        check(`${name} below the header non-zero minimum`, { ...base, [name]: nz - 1 }, false);
      }
    }
    const bpp = H('HB_RGB24_BYTES_PER_PIXEL');
    check('stride = bytes per pixel × width', { width: 16, stride: bpp * 16 }, true);
    check('stride just below bytes per pixel × width', { width: 16, stride: bpp * 16 - 1 }, false);
    const maxStride = H('HB_PROP_STRIDE_MAX'), fbMax = H('HB_FB_MAX_BYTES');
    const lines = Math.floor(fbMax / maxStride);
    if (lines <= H('HB_PROP_HEIGHT_MAX')) {
      check('stride × height = the header FB maximum', { stride: maxStride, height: lines, fps: 1 }, true);
      const perS = H('HB_FB_MAX_BYTES_PER_S');
      const fpsMax = Math.floor(perS / (maxStride * lines));
      check('direct-mode render rate at the header maximum', { stride: maxStride, height: lines, fps: fpsMax }, true);
      check('direct-mode render rate above the header maximum', { stride: maxStride, height: lines, fps: fpsMax + 1 }, false);
      check('no render-rate bound in fb-mode=mmio', { stride: maxStride, height: lines, fps: fpsMax + 1, 'fb-mode': 'mmio' }, true);
      check('stride × height above the header FB maximum', { stride: maxStride, height: lines + 1 }, false);
    }
    check('default properties', {}, true);
    expect(p).toEqual([]);
  });
});

describe('contract: other copies of the numbers', () => {
  it('hilbox_uapi.h duplicates agree with the header', () => {
    const p: string[] = [];
    const u = parseDefines(read('guest-driver/include/hilbox_uapi.h'), /^HILBOX_/);
    const ugroup = (prefix: string) => new Map([...u.values].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    same(p, 'PCI vendor ID', { header: hv('HB_PCI_VENDOR_ID'), uapi: u.values.get('HILBOX_PCI_VENDOR_ID') });
    same(p, 'PCI device ID', { header: hv('HB_PCI_DEVICE_ID'), uapi: u.values.get('HILBOX_PCI_DEVICE_ID') });
    sameGroup(p, 'CAPS bit', { header: headerGroup('HB_CAP_'), uapi: ugroup('HILBOX_CAP_') });
    same(p, 'FORMAT RGB24', { header: hv('HB_FORMAT_RGB24'), uapi: u.values.get('HILBOX_FORMAT_RGB24') }, dec);
    sameGroup(p, 'FB_MODE', { header: headerGroup('HB_FB_MODE_'), uapi: ugroup('HILBOX_FB_MODE_') }, dec);
    same(p, 'event record size', { header: hv('HB_EV_RECORD_SIZE'), uapi: u.values.get('HILBOX_EVENT_SIZE') }, dec);
    sameGroup(p, 'button bit', { header: headerGroup('HB_EV_BUTTON_'), uapi: ugroup('HILBOX_BTN_') });
    sameGroup(p, 'event source', { header: headerGroup('HB_EV_SOURCE_'), uapi: ugroup('HILBOX_SRC_') }, dec);
    sameGroup(p, 'event flag', { header: headerGroup('HB_EV_FLAG_'), uapi: ugroup('HILBOX_EVF_') });
    expect(p).toEqual([]);
  });

  it('the Windows INF matches the PCI identity', () => {
    const inf = read('guest-driver/windows/hilbox.inf');
    const h4 = (n: string) => (hv(n) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    const full = `PCI\\VEN_${h4('HB_PCI_VENDOR_ID')}&DEV_${h4('HB_PCI_DEVICE_ID')}&SUBSYS_${h4('HB_PCI_SUBSYSTEM_ID')}${h4('HB_PCI_SUBSYSTEM_VENDOR_ID')}&REV_${h4('HB_PCI_REVISION').slice(2)}`;
    const ids = [...inf.matchAll(/^%[^%]+%\s*=\s*\w+,\s*(PCI\\\S+)\s*$/gm)].map((m) => m[1]!.toUpperCase());
    expect(ids).toEqual([full, full.replace(/&SUBSYS.*$/, '')]);
  });
});

describe('contract: the device and the drivers keep no private copy', () => {
  const device = read('qemu-device/hilbox-pci.c');
  const drivers = [
    'guest-driver/linux/hilbox.c',
    ...readdirSync(join(repoRoot, 'guest-driver/windows')).filter((f) => /\.[ch]$/.test(f)).map((f) => `guest-driver/windows/${f}`),
  ];
  const defined = (src: string) => [...src.matchAll(/^\s*#\s*define\s+(\w+)/gm)].map((m) => m[1]!);

  it('the QEMU build places the header where the device includes it, and hashes it', () => {
    const script = read('scripts/build-qemu.mjs');
    const entry = /\{\s*from:\s*'guest-driver\/include\/hilbox_regs\.h',\s*to:\s*'([^']+)'\s*\}/.exec(script);
    expect(entry, 'scripts/build-qemu.mjs DEVICE_FILES copies the header').not.toBeNull();
    const inc = entry![1]!.replace(/^include\//, '');
    expect(device).toContain(`#include "${inc}"`);
  });

  it('the device defines none of the contract names and uses the header for every property', () => {
    const own = defined(device).filter((n) => /^(HB_|REG_|CAP_|CONTROL_|INT_|EV_|FEED_|HILBOX_(VENDOR|DEVICE|REVISION|ID|VERSION|FORMAT))/.test(n));
    expect(own, 'contract names #defined in qemu-device/hilbox-pci.c').toEqual([]);
    const missing: string[] = [];
    for (const [name, s] of specProps) {
      const def = `HB_PROP_${propMacro(name)}_DEFAULT`;
      if (hv(def) !== undefined && name !== 'fb-mode' && !new RegExp(`DEFINE_PROP_\\w+\\("${name}",[^)]*\\b${def}\\b`).test(device)) missing.push(`${name}: default ${def}`);
      if (s.type === 'uint32' && !device.includes(`HB_PROP_${propMacro(name)}_MAX`)) missing.push(`${name}: HB_PROP_${propMacro(name)}_MAX`);
    }
    expect(missing, 'properties the device does not take from the header').toEqual([]);
  });

  it('the drivers define none of the header names and no magic literal', () => {
    const problems: string[] = [];
    const magics = ['HB_ID_MAGIC', 'HB_FEED_MAGIC'].map((n) => hex(hv(n)).toLowerCase());
    for (const f of [...drivers, 'qemu-device/hilbox-pci.c']) {
      const src = read(f);
      for (const n of defined(src)) if (header.values.has(n)) problems.push(`${f} #defines ${n}`);
      for (const m of magics) if (src.toLowerCase().includes(m)) problems.push(`${f} spells out ${m}`);
    }
    expect(problems).toEqual([]);
  });
});
