import type { FieldError } from './errors.js';
import type { JsonSchema } from './schema.js';
import type { Boundaries, BoundaryType, HookContext, Options, Row } from './types.js';

export type ConnectorRole = 'source' | 'sink';

/** Whether a runtime part can run in this process; `reason` says what to install when it cannot. */
export interface Availability {
  readonly available: boolean;
  readonly reason?: string;
}

/** A reader over exactly one window of a source. */
export interface BoundedReader {
  /**
   * Batches of rows in source order. The iteration ends when every record of the window has been
   * yielded, even when the source never receives a newer record.
   */
  batches(): AsyncIterable<readonly Row[]>;
  /** Positions reached so far (e.g. partition to offset), reported as job progress. */
  positions?(): Readonly<Record<string, string>>;
  /**
   * Where the window resolved to when the reader opened, for the job to record: e.g. a Kafka TIME
   * window's per-partition offsets as `{ start: "0:10,1:12", stop: "0:20,1:25" }`, written in the
   * connector's OFFSET bound format so that a re-run can read exactly the same records (an OFFSET
   * window from start to stop) and the next window can start where this one stopped.
   */
  resolved?(): Readonly<Record<string, string>>;
  /**
   * Optional: asked before the first batch, with the writer's `nativeForm`, when nothing between
   * reader and writer reads the values. True: the rows yielded from now on may carry values in that
   * form (a connector's own wrapper of its wire text), which the writer takes as they are when its
   * column has the same type and otherwise turns into the value a plain read gives. A reader that
   * does not know the form answers false and yields plain values.
   */
  offerNativeForm?(form: string): boolean;
  /** Releases connections; called once, after the last batch or on failure. */
  close(): Promise<void>;
}

/** A writer scoped to one window: nothing is visible until commit, and abort leaves nothing. */
export interface WindowWriter {
  write(batch: readonly Row[]): Promise<void>;
  /** Makes the window's output visible, replacing any earlier output of the same window. */
  commit(): Promise<void>;
  /** Discards everything written; must be safe to call after a failed write. */
  abort(reason: unknown): Promise<void>;
  /**
   * Optional: a form of values besides plain ones that this writer takes (e.g. `postgres-copy-text`),
   * offered to the reader by `BoundedReader.offerNativeForm` so that a value can skip being parsed
   * and encoded again on its way.
   */
  readonly nativeForm?: string;
}

/** The window a job covers, as a writer sees it. */
export interface WindowRef {
  readonly groupId: string;
  readonly streamId: string;
  readonly jobId: string;
  readonly boundaries: Boundaries;
}

export interface ValidateInput {
  readonly role: ConnectorRole;
  readonly options: Options;
}

export interface FillInBoundariesInput {
  readonly options: Options;
  readonly boundaries: Boundaries;
}

export interface OpenReaderInput {
  /** The options returned by fillInBoundaries. */
  readonly options: Options;
  readonly boundaries: Boundaries;
}

export interface OpenWriterInput {
  readonly options: Options;
  readonly window: WindowRef;
}

export interface FlinkTableOptionsInput {
  readonly role: ConnectorRole;
  /** For a source, the options returned by fillInBoundaries. */
  readonly options: Options;
}

export interface FlinkColumnTypesInput {
  /** The options returned by fillInBoundaries. */
  readonly options: Options;
  /** The source columns the Flink table declares (the mapping's source fields, and a TIME window's column). */
  readonly columns: readonly string[];
}

/**
 * A connector plugin: the default export of a connector plugin's entry module. Every hook is optional
 * unless its role needs it; hooks receive frozen inputs and are called through the service's hook
 * runner, which applies a timeout and wraps anything thrown that is not a SluiceError as PLUGIN_FAILED.
 */
export interface ConnectorPlugin {
  readonly kind?: 'connector';
  /** Which ends of a stream this connector can be. */
  readonly roles: readonly ConnectorRole[];
  /** Boundary types the source honours; required with the source role. */
  readonly boundaryTypes?: readonly BoundaryType[];
  /** JSON Schema of the options as a source; required with the source role. */
  readonly sourceOptions?: JsonSchema;
  /** JSON Schema of the options as a sink; required with the sink role. */
  readonly sinkOptions?: JsonSchema;

  /**
   * Checks beyond the schema (which the service has already applied): cross-field rules, formats.
   * Called by ValidateOptions and before every job. Return the problems; throw only on a bug.
   */
  validate?(input: ValidateInput, ctx: HookContext): readonly FieldError[] | Promise<readonly FieldError[]>;
  /**
   * Pure: turns valid source options and a window into bounded source options (InLong's
   * ExtractNode.fillInBoundaries). Same input, same output; no I/O. Throw an INVALID_ARGUMENT
   * SluiceError for bounds that do not parse. Required with the source role.
   */
  fillInBoundaries?(input: FillInBoundariesInput, ctx: HookContext): Options;
  /**
   * Pure, optional: the canonical form of a window's bounds, so one window has one job and one ledger row
   * however a caller writes it (Kafka: OFFSET partitions sorted, spaces dropped). Called before a
   * submitted window is looked up; throw an INVALID_ARGUMENT SluiceError for bounds that do not parse.
   */
  canonicalBoundaries?(input: { readonly boundaries: Boundaries }, ctx: HookContext): Boundaries;
  /** Opens a reader over the window described by bounded options. Used by the embedded runner. */
  openReader?(input: OpenReaderInput, ctx: HookContext): Promise<BoundedReader>;
  /** Opens a window-scoped writer. Used by the embedded runner. */
  openWriter?(input: OpenWriterInput, ctx: HookContext): Promise<WindowWriter>;
  /** Flink SQL `WITH (...)` options for the table, for the Flink runner. */
  flinkTableOptions?(input: FlinkTableOptionsInput, ctx: HookContext): Readonly<Record<string, string>>;
  /**
   * For the Flink runner, a source whose Flink connector converts each value by the column's declared type
   * (JDBC): the Flink SQL type of each of `columns`, read from the source's own metadata. Declared columns
   * then match what the database sends, whatever the mapping's casts. Throw FAILED_PRECONDITION naming a
   * column that does not exist or whose type the Flink connector cannot read.
   */
  flinkColumnTypes?(input: FlinkColumnTypesInput, ctx: HookContext): Promise<Readonly<Record<string, string>>>;
  /** Whether the reader and writer can run here (e.g. a native client library is missing). */
  availability?(ctx: HookContext): { readonly reader?: Availability; readonly writer?: Availability };
}

/** The names of an interface's methods: the hooks of a plugin kind. */
export type HookNames<P> = {
  [K in keyof P]-?: NonNullable<P[K]> extends (...args: never[]) => unknown ? K : never;
}[keyof P] &
  string;

/** A connector plugin's hooks. */
export type ConnectorHook = HookNames<ConnectorPlugin>;

/**
 * Every connector hook, once: a Record over ConnectorHook, so the compiler rejects this list when a hook
 * is added to ConnectorPlugin and not here (or named here and not there).
 */
const CONNECTOR_HOOK_SET: Readonly<Record<ConnectorHook, 1>> = {
  validate: 1,
  fillInBoundaries: 1,
  canonicalBoundaries: 1,
  openReader: 1,
  openWriter: 1,
  flinkTableOptions: 1,
  flinkColumnTypes: 1,
  availability: 1,
};
/** Hook names a connector plugin may define. */
export const CONNECTOR_HOOKS = Object.freeze(Object.keys(CONNECTOR_HOOK_SET) as ConnectorHook[]);
/** Data fields a connector plugin may define. */
export const CONNECTOR_FIELDS = ['kind', 'roles', 'boundaryTypes', 'sourceOptions', 'sinkOptions'] as const;

/** Declares a connector plugin; returns it unchanged, typed and marked as a connector. */
export function defineConnectorPlugin<const T extends ConnectorPlugin>(plugin: T): T & { readonly kind: 'connector' } {
  return Object.freeze({ ...plugin, kind: 'connector' as const });
}
