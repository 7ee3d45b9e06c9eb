import { DateTime } from 'luxon';

/**
 * A wall time's instant by the rules, through luxon: luxon resolves an ambiguous wall time either way,
 * so every instant showing the wall time (the wall time minus an offset in force around it) is tried
 * and the first kept; a wall time in a gap is luxon's own (moved forward by the gap).
 */
export function firstOccurrence(
  wall: {
    year: number;
    month: number;
    day: number;
    hour: number;
    minute: number;
    second?: number;
    millisecond?: number;
  },
  zone: string,
): number {
  const guess = DateTime.fromObject(wall, { zone });
  const wallMs = Date.UTC(
    wall.year,
    wall.month - 1,
    wall.day,
    wall.hour,
    wall.minute,
    wall.second ?? 0,
    wall.millisecond ?? 0,
  );
  const offsets = [-3, 0, 3].map(
    (h) => DateTime.fromMillis(guess.toMillis() + h * 3_600_000, { zone }).offset * 60_000,
  );
  const same = (ms: number) => {
    const d = DateTime.fromMillis(ms, { zone });
    return (
      d.year === wall.year &&
      d.month === wall.month &&
      d.day === wall.day &&
      d.hour === wall.hour &&
      d.minute === wall.minute &&
      d.second === (wall.second ?? 0)
    );
  };
  const valid = offsets.map((o) => wallMs - o).filter(same);
  return valid.length > 0 ? Math.min(...valid) : guess.toMillis();
}
