import type { HookRunner } from '../../host/hook-runner.js';
import type { JobSpec, RunContext, Runner } from '../domain/runner.js';
import type { FlinkRunner } from './flink.js';
import { flinkStatements, sourceTimeBounds } from './flink-sql.js';

/**
 * The `flink` runner as the operator sees it: asks both connectors for their Flink table options
 * (through the hook runner), generates the job's SQL and hands it to the Flink SQL Gateway.
 */
export class FlinkJobRunner implements Runner {
  readonly name = 'flink';

  constructor(
    private readonly flink: FlinkRunner,
    private readonly hooks: HookRunner,
  ) {}

  async run(spec: JobSpec, ctx: RunContext): Promise<void> {
    const sourceTable = await this.hooks.call(
      spec.source,
      'flinkTableOptions',
      { role: 'source', options: spec.boundedSourceOptions },
      { signal: ctx.signal },
    );
    const sinkTable = await this.hooks.call(
      spec.sink,
      'flinkTableOptions',
      { role: 'sink', options: spec.stream.sink.options },
      { signal: ctx.signal },
    );
    const bounds = sourceTimeBounds(spec.boundedSourceOptions);
    // JDBC sources: columns typed from the database's metadata, as Flink's JDBC source converts by them.
    let sourceColumnTypes: Readonly<Record<string, string>> | undefined;
    if (spec.stream.fields.length > 0 && this.hooks.has(spec.source, 'flinkColumnTypes')) {
      const columns = [
        ...new Set([...spec.stream.fields.map((f) => f.sourceField), ...(bounds ? [bounds.timeColumn] : [])]),
      ];
      sourceColumnTypes = await this.hooks.call(
        spec.source,
        'flinkColumnTypes',
        { options: spec.boundedSourceOptions, columns },
        { signal: ctx.signal },
      );
    }
    const { groupId, streamId, boundaries: b } = spec.job;
    const statements = flinkStatements({
      jobId: spec.job.jobId,
      stream: spec.stream,
      boundaries: spec.job.boundaries,
      sourceTable,
      sinkTable,
      windowId: `${groupId}/${streamId}/${b.boundaryType}:${b.lowerBound}:${b.upperBound}`,
      ...(bounds ? { sourceBounds: bounds } : {}),
      ...(sourceColumnTypes ? { sourceColumnTypes } : {}),
    });
    // ctx.beforeCommit is not asked: the Flink job's sink commits on the cluster (at its checkpoints and as the
    // job finishes), with no step here between the last write and the commit to hold it. A cancel that reaches this
    // replica stops the Flink job through ctx.signal.
    await this.flink.run(
      { jobId: spec.job.jobId, statements },
      { signal: ctx.signal, onProgress: (p) => ctx.onProgress(p) },
    );
  }
}
