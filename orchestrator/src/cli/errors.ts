/** Maps errors to the CLI's exit codes and one readable message. */
import { HilboxError, UsageError } from '../core/errors.ts';
import { ExitCode, type ExitCodeValue } from './exit-codes.ts';

export { UsageError };

export function exitCodeFor(e: unknown): ExitCodeValue {
  if (e instanceof UsageError) return ExitCode.usage;
  if (e instanceof HilboxError) {
    switch (e.kind) {
      case 'boot':
      case 'guest-exit':
        return ExitCode.boot;
      case 'crash':
        return ExitCode.crash;
      case 'timeout':
        return ExitCode.failed;
      default:
        return ExitCode.infra;
    }
  }
  return ExitCode.infra;
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
