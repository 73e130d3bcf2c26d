/**
 * Layers point down: every import inside orchestrator/src goes to the same or a lower layer,
 * and nothing outside cli/ imports cli/. The order is README.md's (orchestrator layout).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';

const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['device', 'ssh', 'qmp', 'feed', 'products', 'package'],
  ['scenario', 'qtest'],
  ['report'],
  ['vm'],
  ['guest'],
  ['lib'],
  ['session'],
  ['suites'],
  ['bench'],
  ['cli'],
];
const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));
const src = join(repoRoot, 'orchestrator', 'src');

describe('orchestrator layers', () => {
  it('every folder is in a layer, and every import points to the same layer or below', () => {
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const upward: string[] = [];
    for (const f of files) {
      const from = f.split('/')[0]!;
      expect(rank.has(from), `orchestrator/src/${from}/ is in no layer of this test and README.md`).toBe(true);
      for (const m of readFileSync(join(src, f), 'utf8').matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
        const to = relative(src, resolve(dirname(join(src, f)), m[1]!)).split('/')[0]!;
        if (rank.get(to)! > rank.get(from)! || (to === 'cli' && from !== 'cli')) upward.push(`${f} -> ${m[1]}`);
      }
    }
    expect(upward).toEqual([]);
    expect(files.length).toBeGreaterThan(60);
  });
});
