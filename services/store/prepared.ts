import { type Compilable, CompiledQuery, type Kysely, type QueryResult } from 'kysely';

/** Marks where a named value goes in a statement compiled once; never a value a caller could send (it holds NUL). */
const SLOT = '\u0000sluice.slot:';

/**
 * A statement Kysely builds and compiles once, then runs with new values: later calls skip building the query
 * tree and compiling it (about a third of RegisterSchedule's store time went there), and SQLite reuses its
 * prepared statement for the unchanged text. `build` gets a placeholder for each name in `names` where a value
 * goes; what it writes itself (a status constant) stays as compiled. Each name must be used exactly once.
 * `execute` (the dialect's, StoreDialect.execute) runs it without Kysely's executor where the store has one.
 */
export function prepared<DB, N extends string, R>(
  db: Kysely<DB>,
  names: readonly N[],
  build: (slots: Readonly<Record<N, never>>) => Compilable<R>,
  execute?: (sql: string, parameters: readonly unknown[]) => Promise<QueryResult<unknown>>,
): (values: Readonly<Record<N, unknown>>) => Promise<QueryResult<R>> {
  let compiled: { readonly sql: string; readonly slots: readonly ({ name: N } | { value: unknown })[] } | undefined;
  const compile = () => {
    const slots = Object.fromEntries(names.map((n) => [n, `${SLOT}${n}`])) as unknown as Record<N, never>;
    const query = build(slots).compile();
    const used = new Set<string>();
    const order = query.parameters.map((p) => {
      if (typeof p !== 'string' || !p.startsWith(SLOT)) return { value: p };
      const name = p.slice(SLOT.length) as N;
      if (used.has(name)) throw new Error(`prepared statement uses '${name}' twice: ${query.sql}`);
      used.add(name);
      return { name };
    });
    const missing = names.filter((n) => !used.has(n));
    if (missing.length > 0) throw new Error(`prepared statement does not use ${missing.join(', ')}: ${query.sql}`);
    return { sql: query.sql, slots: order };
  };
  return (values) => {
    compiled ??= compile();
    const parameters = compiled.slots.map((s) => ('name' in s ? values[s.name] : s.value));
    if (execute) return execute(compiled.sql, parameters) as Promise<QueryResult<R>>;
    return db.executeQuery(CompiledQuery.raw(compiled.sql, parameters)) as Promise<QueryResult<R>>;
  };
}
