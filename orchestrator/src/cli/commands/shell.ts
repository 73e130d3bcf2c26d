/** `hilbox shell`: a developer's VM session — boot, load the driver, interactive SSH, clean up. */
import { bootScenario, loadScenario } from '../../session/boot.ts';
import { UsageError } from '../errors.ts';
import type { Output } from '../output.ts';

export async function shellCommand(a: { scenario?: string; out: Output }): Promise<number> {
  if (!process.stdin.isTTY) throw new UsageError('shell needs an interactive terminal (use `hilbox exec -- CMD` in scripts)');
  const { scenario } = loadScenario(a.scenario);
  await using vm = await bootScenario(scenario, { out: a.out });
  a.out.info(`guest ready: /dev/hilbox0, hilbox-probe; console log ${vm.consoleLog}; exit the shell to stop the VM`);
  a.out.close();
  const code = await vm.ssh.shell();
  return code ?? 0;
}
