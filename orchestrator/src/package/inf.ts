/**
 * Reads what a catalog needs from a driver INF: the CatalogFile name (and its line), the
 * hardware IDs of the models sections, the [Manufacturer] TargetOSVersion decorations and the
 * files the INF copies ([SourceDisksFiles]). INF syntax as Windows reads it: case-insensitive
 * section and key names, `;` comments outside double quotes, `\` line continuation, comma-
 * separated fields, %strkey% tokens from [Strings], UTF-8/ANSI or UTF-16LE (with BOM) text.
 * Problems are UsageErrors naming the INF (`label`) and, where there is one, the line.
 * One job: INF facts.
 */
import { UsageError } from '../core/errors.ts';

export interface InfLine {
  /** 1-based line number (of the first physical line). */
  line: number;
  /** Text before `=` (unquoted), or undefined for a line without one. */
  key: string | undefined;
  /** The comma-separated fields after `=` (or of the whole line), unquoted, %tokens% not yet expanded. */
  fields: string[];
  /** The line without its comment, trimmed. */
  text: string;
}

export interface Inf {
  /** Section name (lower case) -> its lines, in file order. */
  sections: Map<string, InfLine[]>;
  lines(section: string): InfLine[];
  /** Expands %strkey% tokens from [Strings] (%% is a literal %). */
  expand(s: string): string;
}

/** Decodes INF bytes: UTF-16LE with BOM, UTF-8 with or without BOM (Latin-1 when not UTF-8). */
export function decodeInf(bytes: Buffer): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const text = bytes.subarray(start).toString('utf8');
  return text.includes('\uFFFD') ? bytes.subarray(start).toString('latin1') : text;
}

function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === ';' && !quoted) return line.slice(0, i);
  }
  return line;
}

/** Splits at commas outside quotes; unquotes each field ("" inside quotes is one "). */
function splitFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') {
      if (quoted && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (c === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

/** Index of the first `=` outside quotes, or -1. */
function equalsAt(s: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '"') quoted = !quoted;
    else if (s[i] === '=' && !quoted) return i;
  }
  return -1;
}

export function parseInf(bytes: Buffer, label: string): Inf {
  const physical = decodeInf(bytes).split(/\r\n|\r|\n/);
  const sections = new Map<string, InfLine[]>();
  let current: InfLine[] | undefined;
  for (let i = 0; i < physical.length; i++) {
    const lineNo = i + 1;
    let text = stripComment(physical[i]!).trim();
    // `\` at the end of a line continues it on the next one
    while (text.endsWith('\\') && i + 1 < physical.length) {
      i++;
      text = `${text.slice(0, -1)}${stripComment(physical[i]!).trim()}`;
    }
    if (!text) continue;
    const header = /^\[([^\]]*)\]$/.exec(text);
    if (header) {
      const name = header[1]!.trim().toLowerCase();
      current = sections.get(name) ?? [];
      sections.set(name, current);
      continue;
    }
    if (!current) throw new UsageError(`${label} line ${lineNo}: "${text}" is outside any [section]`);
    const eq = equalsAt(text);
    if (eq < 0) current.push({ line: lineNo, key: undefined, fields: splitFields(text), text });
    else current.push({ line: lineNo, key: splitFields(text.slice(0, eq))[0] ?? '', fields: splitFields(text.slice(eq + 1)), text });
  }
  const strings = new Map<string, string>();
  for (const l of sections.get('strings') ?? []) if (l.key !== undefined) strings.set(l.key.toLowerCase(), l.fields.join(','));
  return {
    sections,
    lines: (s) => sections.get(s.toLowerCase()) ?? [],
    expand: (s) => s.replace(/%([^%]*)%/g, (all, key: string) => (key === '' ? '%' : strings.get(key.toLowerCase()) ?? all)),
  };
}

/** Windows architectures of a driver package, as INF decorations spell them. */
export type InfArch = 'amd64' | 'arm64' | 'x86';

export interface TargetOs {
  /** The decoration as written, e.g. NTamd64.10.0...16299 ('' when undecorated). */
  decoration: string;
  /** Architecture in lower case (amd64, arm64, x86, ia64, arm), or undefined when the decoration names none (applies to every one). */
  arch: string | undefined;
  /** OS major.minor, when given (the decoration applies to this version and later). */
  version: string | undefined;
  build: number | undefined;
}

/** Parses a [Manufacturer] TargetOSVersion decoration: NT[Architecture][.[OSMajor][.[OSMinor][.[ProductType][.[SuiteMask][.[BuildNumber]]]]]]. */
export function parseDecoration(d: string): TargetOs | undefined {
  const m = /^NT(amd64|arm64|x86|ia64|arm)?(?:\.(\d*)(?:\.(\d*)(?:\.([^.]*)(?:\.([^.]*)(?:\.(\d*))?)?)?)?)?$/i.exec(d.trim());
  if (!m) return undefined;
  return {
    decoration: d.trim(),
    arch: m[1]?.toLowerCase(),
    version: m[2] ? `${m[2]}.${m[3] || '0'}` : undefined,
    build: m[6] ? Number(m[6]) : undefined,
  };
}

export interface InfFacts {
  /** The catalog the INF names for `arch` ([Version] CatalogFile.NT<arch>, else CatalogFile.NT, else CatalogFile). */
  catalogFile: { name: string; line: number; key: string };
  /** Hardware and compatible IDs of the models sections (as written, %tokens% expanded), first occurrence order, no case-insensitive duplicates. */
  hardwareIds: string[];
  /** The TargetOSVersion decorations of [Manufacturer] that apply to `arch`. */
  targets: TargetOs[];
  /** Files of [SourceDisksFiles] and [SourceDisksFiles.<arch>]. */
  sourceFiles: { name: string; line: number }[];
}

/** What a catalog for `arch` needs from the INF; every problem is a UsageError naming `label` and the line. */
export function readInfFacts(bytes: Buffer, label: string, arch: InfArch): InfFacts {
  const inf = parseInf(bytes, label);
  const version = inf.lines('Version');
  if (version.length === 0) throw new UsageError(`${label}: no [Version] section (is this a driver INF?)`);
  const sig = version.find((l) => l.key?.toLowerCase() === 'signature');
  if (!sig || !/^\$(windows nt|chicago)\$$/i.test(inf.expand(sig.fields[0] ?? ''))) {
    throw new UsageError(`${label}${sig ? ` line ${sig.line}` : ''}: [Version] needs Signature = "$WINDOWS NT$"`);
  }

  const catLines = new Map(version.filter((l) => l.key !== undefined && /^catalogfile(\.|$)/i.test(l.key)).map((l) => [l.key!.toLowerCase(), l]));
  const cat = catLines.get(`catalogfile.nt${arch}`) ?? catLines.get('catalogfile.nt') ?? catLines.get('catalogfile');
  if (!cat) {
    const others = [...catLines.values()].map((l) => `line ${l.line}: ${l.text}`).join('; ');
    throw new UsageError(`${label}: [Version] has no CatalogFile line for ${arch}${others ? ` (${others})` : ''}; pnputil needs the catalog the INF names, add e.g. "CatalogFile = mydriver.cat"`);
  }
  const catName = inf.expand(cat.fields[0] ?? '');
  if (!/^[^\\/:*?"<>|]+\.cat$/i.test(catName) || cat.fields.length !== 1) {
    throw new UsageError(`${label} line ${cat.line}: "${cat.text}": CatalogFile must be a plain file name ending in .cat (the catalog sits next to the INF)`);
  }

  const manufacturer = inf.lines('Manufacturer');
  if (manufacturer.length === 0) throw new UsageError(`${label}: no [Manufacturer] section, so no hardware IDs`);
  const hardwareIds: string[] = [];
  const seen = new Set<string>();
  const targets: TargetOs[] = [];
  for (const m of manufacturer) {
    const [models, ...decorations] = m.fields.map((f) => inf.expand(f));
    if (!models) throw new UsageError(`${label} line ${m.line}: "${m.text}" names no models section`);
    const parsed: TargetOs[] = [];
    for (const d of decorations.filter((x) => x !== '')) {
      const t = parseDecoration(d);
      if (!t) throw new UsageError(`${label} line ${m.line}: "${d}" is not a TargetOSVersion decoration (NT[arch][.major[.minor[.type[.suite[.build]]]]])`);
      parsed.push(t);
    }
    const sections = parsed.length === 0 ? [{ name: models, target: { decoration: '', arch: undefined, version: undefined, build: undefined } as TargetOs }]
      : parsed.map((t) => ({ name: `${models}.${t.decoration}`, target: t }));
    for (const { name, target } of sections) {
      if (target.arch !== undefined && target.arch !== arch) continue;
      const lines = inf.lines(name);
      if (lines.length === 0) throw new UsageError(`${label} line ${m.line}: models section [${name}] is missing or empty`);
      targets.push(target);
      for (const l of lines) {
        const ids = l.fields.slice(1).map((f) => inf.expand(f)).filter((f) => f !== '');
        if (l.key === undefined || ids.length === 0) throw new UsageError(`${label} line ${l.line}: "${l.text}": a model line is "description = install-section, hardware-id[, compatible-id...]"`);
        for (const id of ids) {
          if (!seen.has(id.toLowerCase())) {
            seen.add(id.toLowerCase());
            hardwareIds.push(id);
          }
        }
      }
    }
  }
  if (targets.length === 0) {
    const line = manufacturer[0]!;
    throw new UsageError(`${label} line ${line.line}: "${line.text}": no models section applies to ${arch} (the --sys image's architecture)`);
  }

  const sourceFiles = [...inf.lines('SourceDisksFiles'), ...inf.lines(`SourceDisksFiles.${arch}`)]
    .filter((l) => l.key !== undefined || l.fields[0])
    .map((l) => ({ name: inf.expand(l.key ?? l.fields[0]!), line: l.line }));

  return { catalogFile: { name: catName, line: cat.line, key: cat.key! }, hardwareIds, targets, sourceFiles };
}

/** Windows 10/11 releases by first build, as Inf2Cat names them in the OS attribute (_v100_X64_RS3, ...). */
const RELEASES: readonly (readonly [number, string])[] = [
  [26100, '24H2'], [22621, '22H2'], [22000, '21H2'], [19041, 'Vb'], [18362, '19H1'], [17763, 'RS5'], [17134, 'RS4'], [16299, 'RS3'], [15063, 'RS2'], [14393, 'RS1'],
];

/**
 * The catalog's OS attribute (Inf2Cat's spelling of its /os: list) and the members' OSAttr for
 * the INF's decorations: Windows 10 and later is _v100 plus the architecture (_X64, _ARM64, none
 * for x86) plus, when the decoration names a build, the release that build starts
 * (NTamd64.10.0...16299 -> _v100_X64_RS3, what Inf2Cat /os:10_RS3_X64 writes); OSAttr is the
 * kernel version, 2:10.0 for every Windows 10 and 11.
 */
export function osAttributes(targets: readonly TargetOs[], arch: InfArch): { os: string; osAttr: string } {
  const archPart = { amd64: '_X64', arm64: '_ARM64', x86: '' }[arch];
  const tokens = new Set<string>();
  for (const t of targets) {
    const release = t.build === undefined ? undefined : RELEASES.find(([first]) => t.build! >= first)?.[1];
    tokens.add(`_v100${archPart}${release ? `_${release}` : ''}`);
  }
  if (tokens.size === 0) tokens.add(`_v100${archPart}`);
  return { os: [...tokens].join(','), osAttr: '2:10.0' };
}
