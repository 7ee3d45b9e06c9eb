/** Prints rows as an aligned text table (header first). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Drops a proto enum's prefix: JOB_STATE_SUCCEEDED -> SUCCEEDED. */
export function enumName(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

export function epoch(ms: number): string {
  return ms ? new Date(ms).toISOString() : '-';
}

/** A command that ran but did not get what it asked for (invalid options, a failed window): its exit code and why. */
export class CommandFailure extends Error {
  constructor(
    readonly exitCode: number,
    readonly status: string,
    message: string,
    readonly fields: readonly { path: string; message: string }[],
    readonly json: boolean,
    /** The output already says it all (e.g. a watched job's final state): print nothing more. */
    readonly quiet = false,
  ) {
    super(message);
  }
}
