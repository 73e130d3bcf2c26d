/**
 * The CI examples in examples/ci/ stay true to the CLI: each file is YAML; every `hilbox`
 * command its scripts call exists (`hilbox <command> --help` of the real CLI exits 0) and takes
 * every option the script gives it; the cache keys they read are the names `hilbox cache keys`
 * prints; the shard count in `--shard K/N` matches the jobs that run shards; the scenarios they
 * name exist and plan; the merged JUnit is what they upload.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { loadScenario } from '../../orchestrator/src/session/boot.ts';
import { planScenarios } from '../../orchestrator/src/suites/run-many.ts';
import { runCli } from './helpers.ts';

const dir = join(repoRoot, 'examples', 'ci');
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
const SCRIPT_KEYS = new Set(['run', 'script', 'before_script', 'after_script']);

/** Every shell script text in a CI file (GitHub `run:`, GitLab `script:` and friends). */
function scripts(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) scripts(x, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (SCRIPT_KEYS.has(k)) out.push(...[v].flat().filter((x): x is string => typeof x === 'string'));
      else scripts(v, out);
    }
  }
  return out;
}

/** `npx hilbox …` / `node bin/hilbox.js …` invocations: their words, up to the end of the command. */
function invocations(script: string): string[][] {
  const flat = script.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, '${{$1}}'); // GitHub expressions as one word
  return [...flat.matchAll(/(?:npx hilbox|node bin\/hilbox\.js)((?:[ \t]+[^\s|;&>]+)*)/g)].map((m) => m[1]!.trim().split(/\s+/).filter(Boolean));
}

const helpCache = new Map<string, Promise<{ code: number | null; text: string }>>();
function help(words: string[]): Promise<{ code: number | null; text: string }> {
  const key = words.join(' ');
  let h = helpCache.get(key);
  if (!h) {
    h = runCli([...words, '--help']).then((r) => ({ code: r.code, text: r.stdout + r.stderr }));
    helpCache.set(key, h);
  }
  return h;
}

/** Splits an invocation into global options, the command path (`cache keys`), its options and arguments. */
async function resolveCommand(words: string[]): Promise<{ path: string[]; options: string[]; args: string[]; global: string[] }> {
  const global: string[] = [];
  let i = 0;
  while (words[i]?.startsWith('-')) global.push(words[i++]!);
  const path = [words[i++]!];
  // A word after a command with subcommands is a subcommand.
  const top = await help(path);
  if (/\nCommands:\n/.test(top.text) && words[i] && !words[i]!.startsWith('-')) path.push(words[i++]!);
  const rest = words.slice(i);
  return { path, global, options: rest.filter((w) => /^-/.test(w)).map((w) => w.replace(/=.*$/, '')), args: rest.filter((w) => !/^-/.test(w)) };
}

describe.each(files)('examples/ci/%s', (file) => {
  const text = readFileSync(join(dir, file), 'utf8');
  const doc = parse(text) as Record<string, unknown>;
  const calls = scripts(doc).flatMap(invocations);

  it('is YAML that calls hilbox', () => {
    expect(doc && typeof doc === 'object').toBe(true);
    if (file !== 'gitlab-ci.yml' || calls.length > 0) expect(calls.length).toBeGreaterThan(0);
  });

  it('names only hilbox commands and options that exist', async () => {
    for (const call of calls) {
      const c = await resolveCommand(call);
      const h = await help(c.path);
      expect(h.code, `hilbox ${c.path.join(' ')} (${file}): ${h.text}`).toBe(0);
      expect(h.text).toMatch(new RegExp(`Usage: hilbox ${c.path.join(' ')}`));
      for (const o of c.options) expect(h.text, `hilbox ${c.path.join(' ')} ${o} (${file})`).toContain(o);
      if (c.global.length) {
        const g = await help([]);
        for (const o of c.global) expect(g.text).toContain(o);
      }
    }
  });

  it('runs scenarios that exist, shards that add up, and reads the keys `hilbox cache keys` prints', async () => {
    for (const call of calls) {
      const c = await resolveCommand(call);
      if (c.path[0] !== 'run' && c.path[0] !== 'matrix') continue;
      const named = c.args.filter((x) => /\.ya?ml$/.test(x));
      for (const a of named) expect(existsSync(join(repoRoot, a)), `${a} (${file})`).toBe(true);
      // they load and plan (a threshold naming no case would stop every shard with exit 2)
      expect(() => planScenarios(named.map((a) => loadScenario(join(repoRoot, a))))).not.toThrow();
      const shard = call[call.indexOf('--shard') + 1];
      if (!call.includes('--shard')) continue;
      const n = /\/(\d+)$/.exec(shard ?? '')?.[1];
      if (n !== undefined) {
        // GitHub: the matrix list of shard indices is 1..N
        const jobs = Object.values((doc['jobs'] ?? {}) as Record<string, { strategy?: { matrix?: { shard?: number[] } } }>);
        const list = jobs.map((j) => j.strategy?.matrix?.shard).find(Array.isArray);
        expect(list, file).toEqual(Array.from({ length: Number(n) }, (_, i) => i + 1));
      } else {
        // GitLab: K/N from parallel's own variables
        expect(shard).toBe('$CI_NODE_INDEX/$CI_NODE_TOTAL');
        expect(text).toMatch(/parallel: \d+/);
      }
    }
    const keys = await runCli(['cache', 'keys']);
    expect(keys.code).toBe(0);
    const printed = new Set([...keys.stdout.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    for (const m of text.matchAll(/\b(HILBOX_[A-Z_]+_KEY|HILBOX_HOST)\b/g)) expect(printed, `${m[1]} (${file})`).toContain(m[1]);
  });

  it('keeps the reports: shard directories uploaded, the merged junit.xml published', () => {
    if (file === 'gitlab-ci.yml') {
      expect(text).toMatch(/artifact: shards\.yml/);
      return;
    }
    expect(text).toMatch(/hilbox merge /);
    expect(text).toMatch(/merged\/junit\.xml/);
    expect(text).toMatch(/~\/\.cache\/hilbox|\.hilbox-cache/);
  });
});

it('the GitLab child pipeline gets the cache key the parent computed', () => {
  const parent = readFileSync(join(dir, 'gitlab-ci.yml'), 'utf8');
  const child = readFileSync(join(dir, 'gitlab-ci-shards.yml'), 'utf8');
  for (const placeholder of child.match(/@[A-Z_]+@/g) ?? []) expect(parent).toContain(placeholder);
  expect(child).toMatch(/key: "@HILBOX_CACHE_KEY@"/);
});
