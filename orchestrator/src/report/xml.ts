/** XML 1.0 escaping. One job: any string → text that is legal in element content or an attribute. */

/**
 * Characters XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF, lone
 * surrogates) become visible escapes like `\u0001`; markup characters become entities.
 */
function escapeWith(s: string, attr: boolean): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '&': out += '&amp;'; continue;
      case '<': out += '&lt;'; continue;
      case '>': out += '&gt;'; continue;
      case '"': out += attr ? '&quot;' : ch; continue;
      case "'": out += attr ? '&apos;' : ch; continue;
      case '\t': out += attr ? '&#9;' : ch; continue;
      case '\n': out += attr ? '&#10;' : ch; continue;
      case '\r': out += '&#13;'; continue;
    }
    const legal = (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
    out += legal ? ch : `\\u${cp.toString(16).padStart(4, '0')}`;
  }
  return out;
}

export function escapeText(s: string): string {
  return escapeWith(s, false);
}

export function escapeAttr(s: string): string {
  return escapeWith(s, true);
}

/** `name="value"` pairs, skipping undefined values. */
export function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}="${escapeAttr(String(v))}"`)
    .join('');
}
