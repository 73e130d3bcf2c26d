/**
 * A small INF reader: sections, `key = value` lines and bare lines, `;` comments outside
 * double quotes (an SDDL string such as "D:P(A;;GA;;;SY)" contains semicolons), case-
 * insensitive section and key names as Windows treats them.
 */
export interface InfLine {
  /** the text before `=`, or the whole line when there is none */
  key: string;
  /** the text after `=` ('' when there is none) */
  value: string;
  /** the line without its comment, trimmed */
  raw: string;
}

export interface Inf {
  text: string;
  sections: Map<string, InfLine[]>;
  lines(section: string): InfLine[];
  /** key (lower case) -> value, quotes removed */
  values(section: string): Map<string, string>;
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

const unquote = (s: string) => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

export function parseInf(text: string): Inf {
  const sections = new Map<string, InfLine[]>();
  let current: InfLine[] | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const raw = stripComment(rawLine).trim();
    if (!raw) continue;
    const header = /^\[([^\]]+)\]$/.exec(raw);
    if (header) {
      const name = header[1]!.trim().toLowerCase();
      current = sections.get(name) ?? [];
      sections.set(name, current);
      continue;
    }
    if (!current) throw new Error(`INF: line outside a section: ${raw}`);
    const eq = raw.indexOf('=');
    const quotedBefore = eq >= 0 && (raw.slice(0, eq).split('"').length - 1) % 2 === 1;
    if (eq < 0 || quotedBefore) current.push({ key: raw, value: '', raw });
    else current.push({ key: raw.slice(0, eq).trim(), value: raw.slice(eq + 1).trim(), raw });
  }
  return {
    text,
    sections,
    lines: (s) => sections.get(s.toLowerCase()) ?? [],
    values: (s) => new Map((sections.get(s.toLowerCase()) ?? []).filter((l) => l.value !== '').map((l) => [l.key.toLowerCase(), unquote(l.value)])),
  };
}
