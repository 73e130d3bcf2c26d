/**
 * `hilbox exec [--scenario F] [--upload FILE]... -- CMD`: boot the scenario's guest with the
 * driver loaded, upload files to the guest's work directory (/root, C:/hilbox), run CMD there
 * over SSH streaming its output, exit with its
 * exit code, tear everything down.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { constants } from 'node:os';
import { shellQuote } from '../../ssh/client.ts';
import { bootScenario, loadScenario } from '../../session/boot.ts';
import { checkGuestConfig } from '../../guest/for-scenario.ts';
import { UsageError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import type { Output } from '../output.ts';

export interface ExecArgs {
  scenario?: string;
  uploads: string[];
  command: string[];
  loadDriver: boolean;
  out: Output;
}

export async function execCommand(a: ExecArgs): Promise<number> {
  if (a.command.length === 0) throw new UsageError('exec: no command given (usage: hilbox exec [options] -- CMD [ARGS...])');
  for (const f of a.uploads) if (!existsSync(f)) throw new UsageError(`exec: --upload ${f}: no such file`);
  const { scenario, baseDir } = loadScenario(a.scenario);
  checkGuestConfig(scenario.guest, baseDir);
  await using vm = await bootScenario(scenario, { out: a.out, loadDriver: a.loadDriver, baseDir });
  for (const f of a.uploads) {
    a.out.step(`uploading ${f}`);
    await vm.upload(f, `${vm.guest.workDir}/${basename(f)}`, 0o755);
  }
  a.out.close();
  // One argument is taken as a shell command line; several are quoted word by word.
  const cmd = a.command.length === 1 ? a.command[0]! : a.command.map(shellQuote).join(' ');
  const r = await vm.exec(`cd ${vm.guest.workDir} && ${cmd}`, {
    onStdout: (c) => process.stdout.write(c),
    onStderr: (c) => process.stderr.write(c),
  });
  vm.assertNoCrash();
  if (r.code === null) {
    // Killed by a signal: the shell convention 128 + signal number.
    const sig = r.signal ? (constants.signals as Record<string, number>)[r.signal.startsWith('SIG') ? r.signal : `SIG${r.signal}`] : undefined;
    return sig ? 128 + sig : ExitCode.infra;
  }
  return r.code;
}
