import type { Instance, Window } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { InstanceState } from '../../proto/gen/sluice/schedule/v1/schedule.js';

/** One character per window, so a day of hourly windows fits on one line. */
export const STRIP_LEGEND: readonly (readonly [string, string])[] = [
  ['#', 'succeeded'],
  ['X', 'failed'],
  ['>', 'running'],
  ['.', 'missing'],
  ['-', 'skipped'],
  ['p', 'paused'],
  [' ', 'not due yet'],
];

/** The strip character of a window: its instance's state, or missing / paused / not due when none. */
export function stripChar(window: Window, instance: Instance | undefined, now: number, paused: boolean): string {
  switch (instance?.state) {
    case InstanceState.INSTANCE_STATE_SUCCEEDED:
      return '#';
    case InstanceState.INSTANCE_STATE_FAILED:
      return 'X';
    case InstanceState.INSTANCE_STATE_SKIPPED:
      return '-';
    case InstanceState.INSTANCE_STATE_SCHEDULED:
    case InstanceState.INSTANCE_STATE_DISPATCHED:
    case InstanceState.INSTANCE_STATE_RUNNING:
      return '>';
    default:
      if ((window.dueTime || window.end) > now) return ' ';
      return paused ? 'p' : '.';
  }
}

/**
 * The coverage strip: lines of `perLine` windows, each line starting with its first window's start
 * (UTC ISO 8601), then a legend and counts.
 */
export function coverageStrip(
  windows: readonly Window[],
  instances: readonly Instance[],
  options: { now: number; paused: boolean; perLine?: number },
): string {
  const byStart = new Map(instances.map((i) => [i.window?.start ?? -1, i]));
  const perLine = options.perLine ?? 24;
  const counts = new Map<string, number>();
  const lines: string[] = [];
  for (let i = 0; i < windows.length; i += perLine) {
    const chunk = windows.slice(i, i + perLine);
    const chars = chunk.map((w) => {
      const c = stripChar(w, byStart.get(w.start), options.now, options.paused);
      counts.set(c, (counts.get(c) ?? 0) + 1);
      return c;
    });
    lines.push(`${new Date(chunk[0]!.start).toISOString()}  |${chars.join('')}|`);
  }
  if (lines.length === 0) lines.push('no windows in this range');
  const legend = STRIP_LEGEND.filter(([c]) => c !== ' ' || counts.has(' '))
    .map(([c, name]) => `${c === ' ' ? "' '" : c} ${name}${counts.has(c) ? ` (${counts.get(c)})` : ''}`)
    .join('  ');
  return `${lines.join('\n')}\n${legend}\n`;
}
