/** `hilbox bench` — placeholder replaced below. */
import type { Output } from '../output.ts';
export async function benchCommand(_a: { scenario?: string; baseline?: string; updateBaseline: boolean; repeat: number; outDir?: string; json: boolean; out: Output }): Promise<number> {
  throw new Error('bench: not wired yet');
}
