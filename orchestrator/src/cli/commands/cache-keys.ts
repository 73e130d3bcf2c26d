/** `hilbox cache keys`: the build cache keys a CI job restores `~/.cache/hilbox` by (products/keys.ts). */
import { repoRoot } from '../../core/paths.ts';
import { buildKeys, formatKeys, type BuildKeys } from '../../products/keys.ts';

export function cacheKeys(): { keys: BuildKeys; text: string } {
  const keys = buildKeys(repoRoot);
  return { keys, text: formatKeys(keys) };
}
