import type { ConnectorPlugin, Options } from 'sluice/sdk';
import type { LoadedPlugin } from '../../host/loader.js';
import type { GroupRecord, JobProgress, JobRecord, StreamSpec } from './model.js';

/** Everything a runner needs to execute one job: one stream of one window. */
export interface JobSpec {
  readonly job: JobRecord;
  readonly group: GroupRecord;
  readonly stream: StreamSpec;
  /** The source options with the window's bounds filled in. */
  readonly boundedSourceOptions: Options;
  readonly source: LoadedPlugin<ConnectorPlugin>;
  readonly sink: LoadedPlugin<ConnectorPlugin>;
}

export interface RunContext {
  /** Aborted on CancelJob or shutdown: the runner stops, the sink aborts, and run() rejects with the reason. */
  readonly signal: AbortSignal;
  onProgress(progress: JobProgress): void;
  /** Where the window resolved to (e.g. Kafka offsets), as soon as it is known. */
  onResolved(positions: Readonly<Record<string, string>>): void;
  /**
   * The run ended on a cancel while the sink was still writing: `settled` resolves once that write has returned
   * and the writer has aborted. The pool stops a thread whose write does not return in time, so that what the
   * write holds (a connection, a transaction, a window lock) goes with it.
   */
  onLeftover?(settled: Promise<void>): void;
  /**
   * Called once, after the last batch is written and right before the sink commits: resolves when the job is still
   * this run's to commit (RUNNING, held by this replica, this attempt: one read of the job). Otherwise it rejects
   * and the run does not commit (the writer aborts): a CancelJob answered by another replica, or a take-over, that
   * this replica's lease renewal has not brought here yet. A run that committed after such a change would land a
   * window the job reports CANCELLED, or one another replica writes again. Given by the operator service to its
   * runners; plugins never see it.
   */
  beforeCommit?(): Promise<void>;
}

/** Executes jobs: `embedded` in this process, `flink` on a Flink cluster. run() resolves when the window is written and committed. */
export interface Runner {
  readonly name: string;
  run(spec: JobSpec, ctx: RunContext): Promise<void>;
}
