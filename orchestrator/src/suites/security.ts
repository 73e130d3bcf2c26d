/**
 * The security suite: every hostile use of the handle the seeds worry about. Each case states
 * its policy and passes only if the policy held (the probe's verdict) AND the guest kernel log
 * stayed free of crash signatures AND QEMU is alive AND the device still answers afterwards AND,
 * where the guest can (guest.reinstallDriver), the driver unloads and reloads cleanly. The
 * removal cases (orderly and surprise) are in removal.ts, the hostile-load cases in hostile.ts.
 */
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import { selectCases } from '../scenario/cases.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { PlannedCase } from './plan.ts';
import { probeCase, skipped } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { HOSTILE_CASES, runHostile, type HostileCase } from './hostile.ts';
import { isRemovalCase, removalCaseNames, removalRunner } from './removal.ts';
import { applyPostChecks, postChecks } from './post-checks.ts';

/** Every security case name this guest knows, in run order: the probe's, the removals (removal.ts), the hostile loads (hostile.ts). */
export function securityCaseNames(traits: GuestTraits): string[] {
  return [...traits.securityCases, ...removalCaseNames(traits), ...HOSTILE_CASES];
}

export function planSecurity(s: Scenario, traits: GuestTraits): PlannedCase[] {
  return selectCases('security', s.suites.security.cases, securityCaseNames(traits)).map((name): PlannedCase => {
    if (!(HOSTILE_CASES as readonly string[]).includes(name)) return { suite: 'security', name };
    if (!traits.findsHotplugged) return { suite: 'security', name, skip: `needs a hot-plugged device, which a ${traits.os} guest cannot find yet (no listDeviceNodes)` };
    if (name === 'irq-drain-bounded' && s.driver?.path) return { suite: 'security', name, skip: 'reloads the image\'s hilbox.ko with ring_size=65536; not run against a scenario\'s own driver (driver.path)' };
    return { suite: 'security', name };
  });
}

interface ListedCase {
  name: string;
  policy?: string;
  host_action: boolean;
}

/** The probe's own case list (policies), read in the guest. */
async function listCases(ctx: SuiteContext): Promise<ListedCase[]> {
  const r = await ctx.vm.probe(['security', '--list'], { timeoutMs: 30_000 });
  const parsed = JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') as { cases?: ListedCase[] };
  return parsed.cases ?? [];
}

export async function runSecuritySuite(ctx: SuiteContext, plan: readonly PlannedCase[]): Promise<CaseResult[]> {
  const { vm, out } = ctx;
  const listed = await listCases(ctx);
  const results: CaseResult[] = [];
  const removal = removalRunner(ctx);
  await vm.guest.clearKernelLog(vm.session);
  for (const p of plan) {
    out.step(`security: ${p.name}`);
    const started = Date.now();
    let c: CaseResult;
    if (p.skip) {
      results.push(skipped(p));
      continue;
    }
    if ((HOSTILE_CASES as readonly string[]).includes(p.name)) {
      c = await runHostile(ctx, p, p.name as HostileCase);
    } else if (isRemovalCase(p.name)) {
      c = await removal(p);
    } else {
      c = await probeCase(vm, p, ['security', '--case', p.name], { timeoutMs: ctx.caseTimeoutMs });
    }
    const problems = await postChecks(ctx);
    c.policy ??= listed.find((l) => l.name === p.name)?.policy;
    c.durationMs = Date.now() - started;
    results.push(applyPostChecks(c, problems));
  }
  return results;
}
