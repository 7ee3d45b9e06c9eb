/** Parses a time given as ISO 8601 or as a duration from now (`-2h`, `+30m`, `90s`, `1d`); epoch ms. */
export function parseTime(field: string, text: string, now = Date.now()): number {
  const d = /^([+-]?)(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (d) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[d[3] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return now + (d[1] === '-' ? -1 : 1) * Number(d[2]) * unit;
  }
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError(field, 'an ISO 8601 time (2026-01-02T03:00:00Z) or a duration (-2h, 30m, 1d)', text);
  }
  return ms;
}

/** A time as UTC ISO 8601 and as local time of this machine. */
export function bothTimes(ms: number): { utc: string; local: string } {
  const date = new Date(ms);
  const local = new Intl.DateTimeFormat('sv-SE', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  }).format(date);
  return { utc: date.toISOString(), local };
}

/** Bad command-line input: the option, what was expected, what came. */
export class UsageError extends Error {
  constructor(
    readonly field: string,
    readonly expected: string,
    readonly received: string,
  ) {
    super(`${field}: expected ${expected}, got ${JSON.stringify(received)}`);
  }
}
