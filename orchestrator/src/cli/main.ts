/** The `hilbox` command line: parses arguments, maps errors to documented exit codes. */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from './exit-codes.ts';
import { createOutput, type Output } from './output.ts';
import { exitCodeFor, describeError, UsageError } from './errors.ts';

const program = new Command('hilbox')
  .description('hardware-in-the-loop emulator for driver writers: QEMU + hilbox-pci + reference drivers')
  .option('--json', 'machine-readable output on stdout (progress lines suppressed)')
  .exitOverride()
  .showHelpAfterError();

let output: Output | undefined;
function out(): Output {
  output ??= createOutput({ json: Boolean(program.opts().json) });
  return output;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

program
  .command('run')
  .description('run scenarios end to end, one after the other (default: the embedded fixtures/default.yaml); --shard K/N runs the Kth of N parts')
  .argument('[scenarios...]', 'scenario YAML files')
  .option('--out <dir>', 'artifact directory (default: ./hilbox-out/<scenario>-<timestamp>); with several scenarios, one subdirectory each')
  .option('--shard <K/N>', 'run only shard K of N: a deterministic split of the cases (and scenarios) balanced by expected cost; merge the shards with `hilbox merge`')
  .option('--dry-run', 'build and boot nothing: print the expected cost of 1..N shards and the cases shard K runs')
  .action(async (scenarios: string[], opts: { out?: string; shard?: string; dryRun?: boolean }) => {
    const { runScenariosCommand } = await import('./commands/run.ts');
    process.exitCode = await runScenariosCommand({ scenarios, json: Boolean(program.opts().json), out: out(), dryRun: Boolean(opts.dryRun), ...(opts.out ? { outDir: opts.out } : {}), ...(opts.shard !== undefined ? { shard: opts.shard } : {}) });
  });

program
  .command('matrix')
  .description('several scenarios on this machine, up to N VMs side by side, builds done once, one combined report')
  .argument('<scenarios...>', 'scenario YAML files')
  .option('-j, --jobs <n>', 'VMs running at once', '2')
  .option('--shard <K/N>', 'run only shard K of N of the scenarios\' cases')
  .option('--out <dir>', 'artifact directory (default: ./hilbox-out/matrix-<timestamp>); one subdirectory per scenario')
  .action(async (scenarios: string[], opts: { jobs: string; shard?: string; out?: string }) => {
    const { matrixCommand } = await import('./commands/matrix.ts');
    process.exitCode = await matrixCommand({ scenarios, jobs: opts.jobs, json: Boolean(program.opts().json), out: out(), ...(opts.out ? { outDir: opts.out } : {}), ...(opts.shard !== undefined ? { shard: opts.shard } : {}) });
  });

program
  .command('merge')
  .description('merge the artifact directories of the shards of one run (hilbox run --shard K/N) into one results.json, junit.xml and summary.md')
  .argument('<dirs...>', 'shard artifact directories')
  .option('--out <dir>', 'directory for the merged report (default: ./hilbox-out/merged-<timestamp>)')
  .action(async (dirs: string[], opts: { out?: string }) => {
    const { mergeCommand } = await import('./commands/merge.ts');
    process.exitCode = mergeCommand({ dirs, json: Boolean(program.opts().json), ...(opts.out ? { outDir: opts.out } : {}) });
  });

program
  .command('bench')
  .description('repeat the throughput cases, compare with the baseline of this mode and machine, exit 1 on a regression')
  .argument('[scenario]', 'scenario YAML file (default: fixtures/scenarios/full.yaml, every case the default scenario samples)')
  .option('--deterministic', 'guest time follows instructions (TCG, -icount shift=0,sleep=off,align=off): figures repeat')
  .option('--baseline <file>', 'baseline file (default: fixtures/bench-baseline.json)')
  .option('--update-baseline', 'record the measured metrics as the baseline of this mode and machine')
  .option('--repeat <n>', 'repetitions of each case (default 3; 1 with --deterministic)')
  .option('--history <dir>', 'history directory every run is added to (default hilbox-out/bench-history)')
  .option('--no-history', 'keep no history')
  .option('--out <dir>', 'artifact directory')
  .action(async (scenario: string | undefined, opts: { baseline?: string; updateBaseline?: boolean; repeat?: string; out?: string; deterministic?: boolean; history?: string | boolean }) => {
    const { benchCommand } = await import('./commands/bench.ts');
    process.exitCode = await benchCommand({
      scenario,
      baseline: opts.baseline,
      updateBaseline: Boolean(opts.updateBaseline),
      ...(opts.repeat !== undefined ? { repeat: Number(opts.repeat) } : {}),
      deterministic: Boolean(opts.deterministic),
      ...(opts.history === false ? { history: false as const } : typeof opts.history === 'string' ? { history: opts.history } : {}),
      outDir: opts.out,
      json: Boolean(program.opts().json),
      out: out(),
    });
  });

program
  .command('shell')
  .description('developer session: boot the guest, load the driver, open an interactive SSH shell; cleans up on exit')
  .option('--scenario <file>', 'scenario YAML file')
  .action(async (opts: { scenario?: string }) => {
    const { shellCommand } = await import('./commands/shell.ts');
    process.exitCode = await shellCommand({ scenario: opts.scenario, out: out() });
  });

program
  .command('exec')
  .description('boot the guest with the driver loaded, upload files, run CMD over SSH, exit with its exit code')
  .option('--scenario <file>', 'scenario YAML file')
  .option('--upload <file>', 'file to upload to /root/ in the guest (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--no-driver', 'do not load the reference driver')
  .argument('<cmd...>', 'command to run in the guest (after --)')
  .action(async (cmd: string[], opts: { scenario?: string; upload: string[]; driver: boolean }) => {
    const { execCommand } = await import('./commands/exec.ts');
    process.exitCode = await execCommand({ scenario: opts.scenario, uploads: opts.upload, command: cmd, loadDriver: opts.driver, out: out() });
  });

program
  .command('boot-time')
  .description('time the guest from QEMU start to the first SSH command, each way it comes up (first boot storing its snapshot, resumed, cold), in one run; --kernel-args tries a kernel knob beside the cold boot')
  .argument('[scenario]', 'scenario YAML file (default: the embedded default)')
  .option('--repeat <n>', 'rounds (default 5)')
  .option('--kernel-args <args>', 'kernel arguments added to a fourth row (a cold boot), to compare with the plain cold boot')
  .option('--thp', 'each way again with QEMU given the host\'s transparent huge pages (hilbox runs it without)')
  .option('--idle <seconds>', 'the host idles this long before every timed boot, as before the first VM of a command (default 0)')
  .action(async (scenario: string | undefined, opts: { repeat?: string; kernelArgs?: string; thp?: boolean; idle?: string }) => {
    const { bootTimeCommand } = await import('./commands/boot-time.ts');
    process.exitCode = await bootTimeCommand({ ...(scenario ? { scenario } : {}), ...(opts.repeat !== undefined ? { repeat: opts.repeat } : {}), ...(opts.kernelArgs !== undefined ? { kernelArgs: opts.kernelArgs } : {}), thp: Boolean(opts.thp), ...(opts.idle !== undefined ? { idle: opts.idle } : {}), json: Boolean(program.opts().json), out: out() });
  });

program
  .command('build')
  .description('build (or reuse from cache) QEMU with hilbox-pci and the guest image')
  .addOption(new Option('--only <what>', 'build only this').choices(['qemu', 'guest']))
  .option('--explain', 'say whether each build is up to date and, if not, which input changed since the last build; build nothing')
  .option('--boot-snapshots <scenario...>', "after the builds, boot each scenario's configuration once so its boot snapshot is in the cache (for a CI build job)")
  .action(async (opts: { only?: 'qemu' | 'guest'; explain?: boolean; bootSnapshots?: string[] }) => {
    if (opts.explain) {
      const { explainCommand } = await import('./commands/build.ts');
      process.stdout.write(`${await explainCommand(opts.only ?? 'all')}\n`);
      return;
    }
    if (opts.bootSnapshots && opts.only) throw new UsageError('build: --boot-snapshots boots the scenarios, which needs both builds; leave out --only');
    const { buildCommand, bootSnapshotsCommand, loadBootSnapshotScenarios } = await import('./commands/build.ts');
    const scenarios = opts.bootSnapshots ? loadBootSnapshotScenarios(opts.bootSnapshots) : undefined;
    const result = await buildCommand(opts.only ?? 'all', out());
    const snapshots = scenarios ? await bootSnapshotsCommand(scenarios, out()) : undefined;
    out().close();
    if (program.opts().json) printJson({ ...result, ...(snapshots ? { bootSnapshots: snapshots } : {}) });
    else {
      for (const [k, v] of Object.entries(result)) process.stdout.write(`${k}: ${v}\n`);
      for (const s of snapshots ?? []) process.stdout.write(`boot snapshot: ${s.scenario}: ${s.outcome}\n`);
    }
  });

const cache = program.command('cache').description('what the build cache holds (sizes, last use), and pruning it');
cache
  .command('list')
  .description('every cache entry with its size and last use')
  .action(async () => {
    const { cacheList, formatCacheReport } = await import('./commands/cache.ts');
    const r = cacheList();
    if (program.opts().json) printJson(r);
    else process.stdout.write(formatCacheReport(r));
  });
cache
  .command('keys')
  .description('the cache keys of the builds (hashes of the repository files each build reads): NAME=value lines for CI cache steps')
  .action(async () => {
    const { cacheKeys } = await import('./commands/cache-keys.ts');
    const r = cacheKeys();
    if (program.opts().json) printJson(r.keys);
    else process.stdout.write(r.text);
  });
cache
  .command('prune')
  .description('remove builds (QEMU, guest, Windows package and probe) not used for N days; current builds stay')
  .option('--days <n>', 'unused for this many days', '30')
  .option('--dry-run', 'list what would go, remove nothing')
  .action(async (opts: { days?: string; dryRun?: boolean }) => {
    const { cachePrune, formatCacheReport } = await import('./commands/cache.ts');
    const r = cachePrune(opts);
    if (program.opts().json) printJson(r);
    else process.stdout.write(formatCacheReport(r, opts.dryRun ? 'would remove' : 'removed'));
  });
cache
  .command('clean')
  .description('remove everything in the cache, or every entry of one kind (the next run rebuilds it)')
  .argument('[kind]', 'qemu, qemu-tree, guest, windows, windows-pki, windows-probe, kernel, debs, qemu-src or accel')
  .action(async (kind: string | undefined) => {
    const { cacheClean, formatCacheReport } = await import('./commands/cache.ts');
    const r = cacheClean(kind);
    if (program.opts().json) printJson(r);
    else process.stdout.write(formatCacheReport(r, 'removed'));
  });

const image = program.command('image').description('build guest disk images');
image
  .command('windows')
  .description('build a golden Windows qcow2 from your installation ISO (unattended; OpenSSH, test signing, Secure Boot off)')
  .option('--iso <file>', 'Windows installation ISO (required)')
  .option('--virtio-iso <file>', 'virtio-win ISO (optional: pvpanic driver, so a bugcheck is reported with its stop code)')
  .option('--out <file>', 'qcow2 to write', 'windows.qcow2')
  .option('--size <size>', 'virtual disk size', '40G')
  .option('--ssh-key <pub>', 'SSH public key to authorize (default ~/.ssh/id_ed25519.pub, else a new key pair next to the image)')
  .option('--edition <n>', 'install.wim image index (edition)', '1')
  .option('--product-key <key>', 'product key, if the ISO asks for one')
  .option('--timeout-minutes <n>', 'give up after this long', '180')
  .option('--force', 'overwrite --out')
  .action(async (opts: Record<string, string | boolean | undefined>) => {
    const { imageWindowsCommand, scenarioSnippet } = await import('./commands/image.ts');
    const result = await imageWindowsCommand(opts, out());
    out().close();
    if (program.opts().json) printJson(result);
    else process.stdout.write(`image: ${result.image}\nssh key: ${result.sshKey}\n\nscenario:\n${scenarioSnippet(result)}\n`);
  });

const pkg = program.command('package').description('make signed driver packages');
pkg
  .command('windows')
  .description('make a Windows driver package pnputil installs unattended: .sys, .inf, a signed catalog, the certificates, hilbox-package.json')
  .option('--sys <file>', 'the driver image (PE), required')
  .option('--inf <file>', 'its INF, required; the catalog gets the name its CatalogFile line gives')
  .option('--out <dir>', 'package directory to write (default ./<sys name>-package)')
  .option('--cert <pem>', 'signer certificate followed by its issuers up to the root, PEM (default: the test PKI in <cache>/windows/pki)')
  .option('--key <file>', 'the signer\'s private key, PEM, unencrypted (with --cert)')
  .action(async (opts: { sys?: string; inf?: string; out?: string; cert?: string; key?: string }) => {
    const { packageWindowsCommand } = await import('./commands/package.ts');
    const result = await packageWindowsCommand(opts, (l) => out().info(l));
    out().close();
    if (program.opts().json) printJson(result);
    else {
      const m = result.manifest;
      process.stdout.write(`package: ${result.dir}\n  ${m.sys}, ${m.inf}, ${m.cat} (signed by ${result.catalog.signer}; ${result.checks.verify})\n`
        + `  certificates: ${m.rootCert} -> Root, ${m.signerCert} -> TrustedPublisher\n  hardware IDs: ${m.hardwareIds.join(', ')}\n`);
    }
  });

program
  .command('doctor')
  .description('check what is missing on this host and print the exact command that fixes it')
  .option('--install', 'install missing Debian packages (root) and run the builds')
  .action(async (opts: { install?: boolean }) => {
    const { runChecks, installMissing } = await import('./commands/doctor.ts');
    let checks = await runChecks();
    if (opts.install) {
      await installMissing(checks, (l) => out().info(l));
      const { buildCommand } = await import('./commands/build.ts');
      await buildCommand('all', out());
      checks = await runChecks();
    }
    out().close();
    if (program.opts().json) printJson(checks);
    else {
      for (const c of checks) process.stdout.write(`${c.ok ? 'ok  ' : 'MISS'} ${c.name.padEnd(22)} ${c.detail}${c.fix ? `\n     fix: ${c.fix}` : ''}\n`);
    }
    process.exitCode = checks.every((c) => c.ok) ? ExitCode.ok : ExitCode.failed;
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  output?.close();
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : ExitCode.usage;
  } else {
    process.stderr.write(`hilbox: ${describeError(e)}\n`);
    process.exitCode = exitCodeFor(e);
  }
} finally {
  output?.close();
}
