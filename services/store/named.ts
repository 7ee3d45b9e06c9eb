import type { CompiledQuery } from 'kysely';

/**
 * Statements of fixed text that PostgreSQL should parse and plan once per connection, not once per call: the
 * pool's clients ({@link statementName}) send them as named prepared statements. Only texts marked here are named,
 * so each connection holds at most MAX_NAMED of them; a text built per call (an IN list of its own length) must
 * never be marked. SQLite caches its prepared statements by text already and ignores this.
 */
const names = new Map<string, string>();
/** More marked texts than the store has fixed statements means a per-call text was marked: stop naming new ones. */
const MAX_NAMED = 64;

/** Marks `query`'s text as one to plan once per connection; answers the query unchanged. */
export function planOnce<R>(query: CompiledQuery<R>): CompiledQuery<R> {
  if (!names.has(query.sql) && names.size < MAX_NAMED) names.set(query.sql, `sluice_${names.size + 1}`);
  return query;
}

/** The prepared statement's name for a text {@link planOnce} marked; undefined for any other text. */
export function statementName(text: string): string | undefined {
  return names.get(text);
}
