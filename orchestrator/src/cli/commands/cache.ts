/** `hilbox cache list|prune|clean`: what the build cache holds, and removing what is not used. */
import { UsageError } from '../../core/errors.ts';
import { cacheRoot } from '../../core/paths.ts';
import { CACHE_KINDS, formatBytes, listCache, pruneCandidates, removeEntries, type CacheEntry, type CacheKind } from '../../products/cache.ts';

export interface CacheReport {
  root: string;
  entries: Array<Omit<CacheEntry, 'lastUsed'> & { lastUsed: string }>;
  totalBytes: number;
  removedBytes?: number;
}

const report = (root: string, entries: readonly CacheEntry[], removedBytes?: number): CacheReport => ({
  root,
  entries: entries.map((e) => ({ ...e, lastUsed: e.lastUsed.toISOString() })),
  totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
  ...(removedBytes !== undefined ? { removedBytes } : {}),
});

export function cacheList(): CacheReport {
  const root = cacheRoot();
  return report(root, listCache(root));
}

/** Keyed builds unused for `days` (default 30), never a current one; `dryRun` lists only. */
export function cachePrune(opts: { days?: string; dryRun?: boolean }): CacheReport {
  const days = opts.days === undefined ? 30 : Number(opts.days);
  if (!Number.isFinite(days) || days < 0) throw new UsageError(`--days: ${JSON.stringify(opts.days)} is not a number of days; allowed: 0 or more`);
  const root = cacheRoot();
  const gone = pruneCandidates(root, days);
  return report(root, gone, opts.dryRun ? 0 : removeEntries(gone));
}

/** Everything, or one kind. */
export function cacheClean(kind: string | undefined): CacheReport {
  if (kind !== undefined && !(CACHE_KINDS as readonly string[]).includes(kind)) {
    throw new UsageError(`kind: ${JSON.stringify(kind)} is not a cache kind; allowed: ${CACHE_KINDS.join(', ')}`);
  }
  const root = cacheRoot();
  const gone = listCache(root).filter((e) => kind === undefined || e.kind === (kind as CacheKind));
  return report(root, gone, removeEntries(gone));
}

/** The table a person reads. */
export function formatCacheReport(r: CacheReport, verb?: string): string {
  const rows = r.entries.map((e) => [e.kind, e.key, formatBytes(e.bytes), e.lastUsed.slice(0, 16).replace('T', ' '), e.current ? 'current' : '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['kind', 'key', 'size', 'last used'][i]!.length, ...rows.map((row) => row[i]!.length)]));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd();
  const head = `${r.root}: ${verb ? `${verb} ` : ''}${r.entries.length} entr${r.entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(r.totalBytes)}${r.removedBytes !== undefined && verb !== 'would remove' ? ` (${formatBytes(r.removedBytes)} freed)` : ''}`;
  return [head, ...(rows.length ? [line(['kind', 'key', 'size', 'last used', '']), ...rows.map(line)] : [])].join('\n') + '\n';
}
