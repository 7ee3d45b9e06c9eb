/** Where progress goes: a live line on a terminal; nothing at all when output is piped or a file. */
export interface ProgressSink {
  readonly tty: boolean;
  write(text: string): void;
}

/** stderr, when it is a terminal. */
export function stderrProgress(): ProgressSink {
  return { tty: process.stderr.isTTY === true, write: (t) => process.stderr.write(t) };
}

const WIDTH = 30;

/** `[#########.....]  12/40 windows` style line: done of total, with a label after. */
export function bar(done: number, total: number, label: string): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${label}`;
}

/**
 * One line redrawn in place (carriage return, erase line) on a terminal; off the terminal it draws
 * nothing, so scripts and logs see only the final output.
 */
export class ProgressLine {
  #shown = false;
  constructor(private readonly sink: ProgressSink) {}

  update(text: string): void {
    if (!this.sink.tty) return;
    this.sink.write(`\r\x1b[2K${text}`);
    this.#shown = true;
  }

  /** Leaves the last line on screen and moves to the next. */
  done(): void {
    if (this.#shown) this.sink.write('\n');
    this.#shown = false;
  }
}

/** Records per second between two samples of a running job. */
export function rate(prev: { records: number; at: number } | undefined, records: number, at: number): number {
  if (!prev || at <= prev.at) return 0;
  return ((records - prev.records) * 1000) / (at - prev.at);
}
