import type { Row } from './types.js';

/**
 * A batch's floating-point columns, as its reader knows them from the source's column types (PostgreSQL real
 * and double precision, MySQL FLOAT and DOUBLE). A JavaScript number does not say whether it came from an
 * integer or a floating-point column, and rows carry no column types: a writer that creates its table from the
 * first batch reads this, so that a floating-point column whose first batch holds only whole numbers is not made
 * an integer column (which would refuse, or cut, the fractions of later batches).
 *
 * A non-enumerable property of the batch array: rows are untouched and a writer that does not ask never sees
 * it. The runner carries it through a stream's field mapping: a field taken as it is keeps its column's mark
 * under its target name, a field cast to `float` is marked, a field cast to anything else is not. Symbol.for:
 * the mark is the same whichever copy of the SDK the reader's and the writer's plugin loaded.
 */
const FLOAT_COLUMNS = Symbol.for('sluice.floatColumns');

/** Marks a batch with its floating-point columns (none: left unmarked); returns the batch. */
export function markFloatColumns<T extends readonly Row[]>(batch: T, columns: ReadonlySet<string> | undefined): T {
  if (columns && columns.size > 0) Object.defineProperty(batch, FLOAT_COLUMNS, { value: columns });
  return batch;
}

/** The floating-point columns the batch was marked with (markFloatColumns), if it was. */
export function floatColumnsOf(batch: readonly Row[]): ReadonlySet<string> | undefined {
  const mark = (batch as { [FLOAT_COLUMNS]?: unknown })[FLOAT_COLUMNS];
  return mark instanceof Set ? (mark as ReadonlySet<string>) : undefined;
}
