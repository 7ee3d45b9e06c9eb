import { parserFor, unescapeCopy } from './values.js';

/** The native form the PostgreSQL reader and writer agree on (BoundedReader.offerNativeForm). */
export const COPY_TEXT_FORM = 'postgres-copy-text';

/**
 * The first OID a database gives its own types: below it, a type OID means the same built-in type on
 * every server. An enum, domain or composite type has an OID of its own database, so an equal OID on
 * another server may be another type: those values are never passed through.
 */
const FIRST_NORMAL_OID = 16384;

/** Whether values of the type may travel as their COPY text. */
export function passableType(oid: number): boolean {
  return oid > 0 && oid < FIRST_NORMAL_OID;
}

/**
 * One value as the source's `COPY TO` wrote it (escaped, never `\N`), with its type. The writer puts
 * the text into `COPY FROM` as it is when its column has the same type: the column's input function
 * reads back exactly what the output function wrote. For any other column it takes `value()`.
 */
export class CopyText {
  constructor(
    /** The field as it was on the wire: COPY-escaped. */
    readonly field: string,
    /** The source column's type OID. */
    readonly oid: number,
  ) {}

  /** The value a plain read of the column gives (the same parser as the COPY reader's). */
  value(): unknown {
    return parserFor(this.oid)(unescapeCopy(this.field));
  }

  /** Approximate size only (the runner measures a batch by one row's JSON): the text. */
  toJSON(): string {
    return this.field;
  }
}
