import type { Boundaries, BoundaryType, Options, Row, WindowRef } from 'sluice/sdk';
import type { Probe } from '../helpers/integration.js';

/**
 * One record of the conformance data set. Every source harness stores these so that the connector's
 * reader yields them back as rows carrying at least `id` (integer) and an event time.
 */
export interface ConformanceRecord {
  readonly id: number;
  /** Event time, epoch ms (Kafka message timestamp, a timestamp column, ...). */
  readonly ts: number;
  readonly name: string;
}

/** What a source harness set up: options to read it with, and how to express windows over it. */
export interface SeededSource {
  /** Valid source options for the connector, pointing at the seeded data. */
  readonly options: Options;
  /**
   * Boundaries of the given type covering exactly the records whose ts is in [fromTs, toTs) (TIME), or
   * whose position lies between those of the first such record and the first record at or after toTs
   * (OFFSET). Only asked for the types the harness does not list in `unsupportedWindows`.
   */
  boundaries(type: BoundaryType, fromTs: number, toTs: number): Promise<Boundaries>;
}

export interface SourceHarness {
  /** Stores the records (in the order given) and returns how to read them. */
  seed(records: readonly ConformanceRecord[]): Promise<SeededSource>;
  /** Maps one row the reader yielded back to the record's id. */
  idOf(row: Row): number;
}

export interface SinkHarness {
  /** Valid sink options, pointing at a fresh, empty destination. */
  options(): Promise<Options>;
  /** Rows the destination holds for the window (committed output only), as records. */
  readBack(options: Options, window: WindowRef): Promise<readonly ConformanceRecord[]>;
}

/**
 * How the conformance suite exercises one connector. Bundled connectors have theirs in
 * test/conformance/harnesses/<id>.ts; a third-party plugin may ship one as `conformance.js` in its
 * folder (default export). Without a harness only the checks that need no data run.
 */
export interface ConformanceHarness {
  readonly connectorId: string;
  /** Whether the external system is reachable; an unreachable one skips (or fails under CI). */
  available(): Promise<Probe>;
  /** Valid source options for the data-free checks (fillInBoundaries purity, boundary types). */
  readonly sampleSourceOptions?: Options;
  /**
   * Well-formed sample windows for the data-free checks, per declared type. TIME defaults to a
   * one-minute window; OFFSET positions are connector-defined, so without a sample OFFSET is not
   * checked data-free.
   */
  readonly sampleBoundaries?: Partial<Record<BoundaryType, Boundaries>>;
  /**
   * Boundary types the data checks cannot run for over this harness, each with the reason (what is
   * missing here). Those checks are declared skipped with the reason in their title, never passed.
   */
  readonly unsupportedWindows?: Partial<Record<BoundaryType, string>>;
  readonly source?: SourceHarness;
  readonly sink?: SinkHarness;
  /** Drops what the harness created. */
  cleanup(): Promise<void>;
}
