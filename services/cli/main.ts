import { CommanderError } from 'commander';
import { describeServiceError, isServiceError } from './client.js';
import { buildProgram } from './commands.js';
import { CommandFailure } from './output.js';
import { UsageError } from './time.js';

/** Exit code for bad command-line input: the same as gRPC INVALID_ARGUMENT. */
const USAGE_EXIT = 3;

/**
 * Runs the CLI; resolves with the exit code. A gRPC failure exits with its status code and prints the
 * status, the message and each field path with its message on stderr, never a stack.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const program = buildProgram((text) => process.stdout.write(text)).exitOverride();
  for (const sub of program.commands) sub.exitOverride();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : USAGE_EXIT;
    if (err instanceof UsageError) {
      report(json, {
        status: 'INVALID_ARGUMENT',
        message: err.message,
        fields: [{ path: err.field, message: `expected ${err.expected}, got ${JSON.stringify(err.received)}` }],
      });
      return USAGE_EXIT;
    }
    if (err instanceof CommandFailure) {
      if (!err.quiet) report(json, { status: err.status, message: err.message, fields: err.fields });
      return err.exitCode;
    }
    if (isServiceError(err)) {
      report(json, describeServiceError(err));
      return err.code;
    }
    report(json, { status: 'UNKNOWN', message: err instanceof Error ? err.message : String(err), fields: [] });
    return 2;
  }
}

function report(
  json: boolean,
  e: { status: string; message: string; fields: readonly { path: string; message: string }[] },
): void {
  if (json) {
    process.stderr.write(JSON.stringify({ error: e }) + '\n');
    return;
  }
  process.stderr.write(`error: ${e.status}: ${e.message}\n`);
  for (const f of e.fields) process.stderr.write(`  ${f.path}: ${f.message}\n`);
}
