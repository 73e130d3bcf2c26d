/** One job: whether the device answers the probe's `info` (after a re-plug PnP/udev take a moment). */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SuiteContext } from './context.ts';
import { runProbe } from './probe.ts';

/** Undefined once the device answers within `ms` (0: one try), else the last reason it did not. */
export async function deviceAnswers(ctx: SuiteContext, ms: number): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [c] = await runProbe(ctx.vm, ['info'], { suite: 'security', step: 'post-check', timeoutMs: ctx.caseTimeoutMs });
    if (c?.status === 'pass') return undefined;
    const why = c?.reason ?? 'no result';
    if (Date.now() > deadline) return why;
    await sleep(500);
  }
}
