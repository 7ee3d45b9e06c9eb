import { invalidArgument, type ScheduleInfo } from 'sluice/sdk';
import { firingRules, isNoEngine } from './info.js';
import { type Window, windowAt, windowsAfter } from './windows.js';

const iso = (ms: number) => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));

/**
 * Checks that submitted TIME bounds are one window of the group's schedule, the same windows
 * PreviewWindows shows. A group whose engine is `None` is explicitly manual: any well-formed bounds.
 * Refusals name the nearest windows, so a caller (or a person reading its log) sees what to send.
 */
export function checkTimeWindow(schedule: ScheduleInfo, lower: number, upper: number): Window {
  if (!Number.isSafeInteger(lower) || lower < 0)
    throw invalidArgument('lower_bound', 'epoch milliseconds as a decimal string', String(lower));
  if (!Number.isSafeInteger(upper) || upper <= lower)
    throw invalidArgument('upper_bound', `epoch milliseconds after lower_bound (${lower})`, String(upper));
  if (isNoEngine(schedule.scheduleEngine)) return { start: lower, end: upper };
  const { spec } = firingRules(schedule);
  const holding = windowAt(spec, lower);
  if (holding && holding.start === lower && holding.end === upper) return holding;
  const near = [...take(windowsAfter(spec, Math.max(spec.startTime, lower) - 1), 2)];
  const before = holding && holding.start !== lower ? [holding] : [];
  const shown = [...before, ...near.filter((w) => !before.some((b) => b.start === w.start))].slice(0, 2);
  const hint =
    shown.length > 0
      ? `the nearest windows are ${shown.map((w) => `[${w.start}, ${w.end}) (${iso(w.start)} to ${iso(w.end)})`).join(' and ')}`
      : `the schedule has no window there (it covers [${spec.startTime}, ${spec.endTime}))`;
  throw invalidArgument(
    'lower_bound',
    `the bounds of one window of group '${schedule.groupId}''s schedule (${hint}), or a group with schedule engine None`,
    `[${lower}, ${upper}) (${iso(lower)} to ${iso(upper)})`,
  );
}

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  for (const x of it) {
    yield x;
    if (--n <= 0) return;
  }
}
