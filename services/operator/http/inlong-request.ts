import { invalidArgument, type BoundaryType } from 'sluice/sdk';
import { bodyKind } from './json-body.js';

/**
 * TIME bounds below this are epoch **seconds** (InLong's Airflow DAG sends `time.timestamp()`), at or
 * above it epoch milliseconds. 10^11 ms is March 1973; 10^11 s is the year 5138: no real bound is
 * ambiguous.
 */
export const SECONDS_BELOW = 1e11;

/** InLong's path, tolerating what its callers send: `//` (an Airflow connection schema with a leading `/`) and a trailing `/`. */
export function normalizePath(path: string): string {
  const collapsed = path.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/+$/, '') : collapsed;
}

/**
 * A TIME bound in epoch ms, from an integer or decimal (string or JSON number) in seconds or ms by
 * the rule above. Seconds may carry up to 3 decimals (`1828067580.0`, `1731072908.243`); anything
 * finer, negative, or not a number is refused, naming the field.
 */
export function timeBound(field: string, value: unknown): string {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^\d+(\.\d+)?$/.test(text))
    throw invalidArgument(field, 'epoch seconds or milliseconds, as a number or a decimal string', value);
  const [whole, fraction = ''] = text.split('.') as [string, string?];
  const n = Number(whole);
  if (n >= SECONDS_BELOW) {
    if (/[1-9]/.test(fraction))
      throw invalidArgument(field, 'whole epoch milliseconds (values >= 1e11 are milliseconds)', value);
    if (!Number.isSafeInteger(n)) throw invalidArgument(field, 'epoch milliseconds within 2^53', value);
    return String(n);
  }
  const digits = fraction.replace(/0+$/, '');
  if (digits.length > 3)
    throw invalidArgument(field, 'epoch seconds with at most 3 decimals (values < 1e11 are seconds)', value);
  return String(n * 1000 + Number(digits.padEnd(3, '0')));
}

/** An OFFSET bound as given: a connector-defined position (a number becomes its decimal text). */
export function offsetBound(field: string, value: unknown): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && value !== '') return value;
  throw invalidArgument(field, 'a position (a non-empty string, or an integer)', value);
}

export interface InlongSubmit {
  readonly groupId: string;
  readonly boundaryType: BoundaryType;
  readonly lowerBound: string;
  readonly upperBound: string;
  readonly rerun: boolean;
}

/** InLong's OfflineJobRequest body; extra fields (InLong clients add some) are ignored. */
export function decodeSubmit(body: unknown): InlongSubmit {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidArgument(
      'body',
      'a JSON object {groupId, boundaryType, lowerBoundary, upperBoundary}',
      bodyKind(body),
    );
  const b = body as Record<string, unknown>;
  if (typeof b.groupId !== 'string' || b.groupId === '') throw invalidArgument('groupId', 'a group id', b.groupId);
  const type = typeof b.boundaryType === 'string' ? b.boundaryType.toUpperCase() : b.boundaryType;
  if (type !== 'TIME' && type !== 'OFFSET')
    throw invalidArgument('boundaryType', '"TIME" or "OFFSET" (any case)', b.boundaryType);
  if (b.rerun !== undefined && typeof b.rerun !== 'boolean') throw invalidArgument('rerun', 'a boolean', b.rerun);
  const bound = type === 'TIME' ? timeBound : offsetBound;
  return {
    groupId: b.groupId,
    boundaryType: type,
    lowerBound: bound('lowerBoundary', b.lowerBoundary),
    upperBound: bound('upperBoundary', b.upperBoundary),
    rerun: b.rerun === true,
  };
}
