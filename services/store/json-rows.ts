import { type RawBuilder, sql } from 'kysely';
import type { StoreDialect } from './dialect.js';

/** A JSON record field's column type: text, epoch milliseconds (64-bit), a 32-bit integer, or JSON. */
export type JsonRowType = 'text' | 'epochMs' | 'integer' | 'json';

/** The PostgreSQL type of each JsonRowType. */
export const PG_TYPES: Readonly<Record<JsonRowType, string>> = {
  text: 'text',
  epochMs: 'bigint',
  integer: 'integer',
  json: 'jsonb',
};

/**
 * Many rows as one bound parameter: a FROM item named `alias` whose columns are `columns`, read from a JSON
 * array of objects (SQLite json_each, PostgreSQL jsonb_to_recordset). A batch of any size is then one
 * statement text, prepared once (SQLite) and planned once, where a multi-row VALUES list or IN list makes a new
 * text, and a new prepare, for every batch size. Values must be JSON-exact: strings, safe integers (epoch
 * milliseconds are), null, and JSON values (arrays, objects) for `json` columns.
 */
export function jsonRows(
  dialect: StoreDialect,
  alias: string,
  columns: Readonly<Record<string, JsonRowType>>,
  rows: readonly object[],
): RawBuilder<unknown> {
  const json = JSON.stringify(rows);
  const names = Object.keys(columns);
  for (const n of names) checkColumnName(n);
  if (dialect.name === 'postgres') {
    const defs = names.map((n) => sql`${sql.id(n)} ${sql.raw(PG_TYPES[columns[n]!])}`);
    return sql`jsonb_to_recordset(${json}::jsonb) AS ${sql.id(alias)}(${sql.join(defs)})`;
  }
  // SQLite: json_extract answers a JSON array or object as its (minified) JSON text, as the json columns hold it.
  const fields = names.map((n) => sql`json_extract(value, ${sql.raw(`'$.${n}'`)}) AS ${sql.id(n)}`);
  return sql`(SELECT ${sql.join(fields)} FROM json_each(${json})) AS ${sql.id(alias)}`;
}

/** A column name of a rows source: written into the statement, so only [a-z_][a-z0-9_]*. */
export function checkColumnName(n: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(n)) throw new RangeError(`column name must be [a-z_][a-z0-9_]*, got ${n}`);
}

/** `needle IN (the texts of the JSON array)`, for a json column of a {@link jsonRows} source. */
export function inJsonArray(dialect: StoreDialect, needle: RawBuilder<unknown>, array: RawBuilder<unknown>) {
  return dialect.name === 'postgres'
    ? sql<boolean>`${needle} IN (SELECT jsonb_array_elements_text(${array}))`
    : sql<boolean>`${needle} IN (SELECT value FROM json_each(${array}))`;
}
