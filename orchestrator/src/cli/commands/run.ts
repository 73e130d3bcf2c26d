/** `hilbox run [scenario.yaml]`: the main job — a scenario end to end, artifacts, a summary. */
import { join, resolve } from 'node:path';
import { loadScenario } from '../../session/boot.ts';
import { runScenario } from '../../suites/run-scenario.ts';
import { toSummaryText } from '../../report/summary.ts';
import { runPassed } from '../../report/results.ts';
import { ExitCode } from '../exit-codes.ts';
import { exitCodeFor } from '../errors.ts';
import type { Output } from '../output.ts';

export function defaultOutDir(name: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  return resolve('hilbox-out', `${name}-${stamp}`);
}

export async function runCommand(a: { scenario?: string; outDir?: string; json: boolean; out: Output }): Promise<number> {
  const { scenario, source, baseDir } = loadScenario(a.scenario);
  const outDir = resolve(a.outDir ?? defaultOutDir(scenario.name));
  a.out.info(`scenario ${scenario.name} (${source})${scenario.description ? `: ${scenario.description}` : ""}; artifacts in ${outDir}`);
  const { results, error } = await runScenario({ scenario, outDir, out: a.out, baseDir });
  if (a.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    process.stdout.write(`${toSummaryText(results)}\n`);
    process.stdout.write(`artifacts: ${outDir} (results.json, junit.xml, summary.md, console.log, qmp.log${results.cases.some((c) => c.name === 'frame-picture') ? ', frame.png' : ''})\n`);
  }
  if (error !== undefined) {
    process.stderr.write(`hilbox: ${(error as Error).message ?? String(error)}\n(console log: ${join(outDir, 'console.log')})\n`);
    return exitCodeFor(error);
  }
  return runPassed(results) ? ExitCode.ok : ExitCode.failed;
}
