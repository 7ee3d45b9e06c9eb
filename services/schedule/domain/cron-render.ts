import type { CronDialect } from 'sluice/sdk';

/**
 * Writes value sets as cron fields in the dialect an external scheduler reads: `*` for every value,
 * a step (`0/15` in Quartz, `*\/15` or `5-59/15` in Unix cron, which has no `a/n`) for an arithmetic
 * run to the field's end, ranges and lists otherwise.
 */
export interface FieldRange {
  readonly min: number;
  readonly max: number;
}

export const SECOND_RANGE: FieldRange = { min: 0, max: 59 };
export const MINUTE_RANGE: FieldRange = { min: 0, max: 59 };
export const HOUR_RANGE: FieldRange = { min: 0, max: 23 };
export const DOM_RANGE: FieldRange = { min: 1, max: 31 };
export const MONTH_RANGE: FieldRange = { min: 1, max: 12 };

/** Every value of a field range, in order. */
export function allValues(range: FieldRange): number[] {
  return Array.from({ length: range.max - range.min + 1 }, (_, i) => range.min + i);
}

/** A field's text for a non-empty sorted set of values within `range`. */
export function renderField(values: readonly number[], range: FieldRange, dialect: CronDialect): string {
  const v = [...new Set(values)].sort((a, b) => a - b);
  if (v.length === 0) throw new RangeError('a cron field needs at least one value');
  if (v.length === range.max - range.min + 1) return '*';
  if (v.length === 1) return String(v[0]);
  const step = v[1]! - v[0]!;
  const arithmetic = v.every((x, i) => x === v[0]! + i * step) && v[v.length - 1]! + step > range.max;
  // A step whose run reaches the field's end; two values read better as a list unless they are a step from the start.
  if (arithmetic && step > 1 && (v.length > 2 || v[0] === range.min)) {
    if (dialect === 'quartz') return `${v[0]}/${step}`;
    return v[0] === range.min ? `*/${step}` : `${v[0]}-${range.max}/${step}`;
  }
  const parts: string[] = [];
  for (let i = 0; i < v.length;) {
    let j = i;
    while (j + 1 < v.length && v[j + 1] === v[j]! + 1) j++;
    if (j - i >= 2) parts.push(`${v[i]}-${v[j]}`);
    else for (let k = i; k <= j; k++) parts.push(String(v[k]));
    i = j + 1;
  }
  return parts.join(',');
}

/** Weekdays (0 = Sunday) as a day-of-week field: Quartz counts 1-7 from Sunday, Unix 0-6. */
export function renderWeekdays(weekdays: readonly number[], dialect: CronDialect): string {
  return dialect === 'quartz'
    ? renderField(
        weekdays.map((d) => d + 1),
        { min: 1, max: 7 },
        dialect,
      )
    : renderField(weekdays, { min: 0, max: 6 }, dialect);
}
