/** `hilbox shell`: a developer's VM session — boot, load the driver, interactive SSH, clean up. */
import { bootScenario, loadScenario } from '../../session/boot.ts';
import { checkGuestConfig } from '../../guest/for-scenario.ts';
import { UsageError } from '../errors.ts';
import type { Output } from '../output.ts';

export async function shellCommand(a: { scenario?: string; out: Output }): Promise<number> {
  if (!process.stdin.isTTY) throw new UsageError('shell needs an interactive terminal (use `hilbox exec -- CMD` in scripts)');
  const { scenario, baseDir } = loadScenario(a.scenario);
  checkGuestConfig(scenario.guest, baseDir);
  await using vm = await bootScenario(scenario, { out: a.out, baseDir });
  a.out.info(`guest ready (${vm.guest.description}), the driver installed, the probe: ${vm.guest.probeCommand(['--help'])}; console log ${vm.consoleLog}; exit the shell to stop the VM`);
  a.out.close();
  const code = await vm.ssh.shell();
  return code ?? 0;
}
