import { type Command, Option } from 'commander';
import { status } from '@grpc/grpc-js';
import { ConnectorRole, ValidateOptionsResponse } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import {
  CancelJobResponse,
  GetJobResponse,
  type Job,
  JobState,
  jobStateToJSON,
  UpdateGroupRequest,
  UpdateGroupResponse,
} from '../../proto/gen/sluice/operator/v1/operator.js';
import type { BackfillMode } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import {
  backfillModeFromJSON,
  BackfillResponse,
  InstanceState,
  instanceStateToJSON,
  PauseScheduleResponse,
  ResumeScheduleResponse,
  scheduleStatusToJSON,
  type Instance,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import type { Clients } from './client.js';
import type { Globals, Out, Run } from './commands.js';
import { readObject, resolveGroupTimes } from './files.js';
import { CommandFailure, enumName, epoch, table } from './output.js';
import { bar, ProgressLine, rate, stderrProgress } from './progress.js';
import { parseTime, UsageError } from './time.js';

const FINAL_INSTANCE = new Set([
  InstanceState.INSTANCE_STATE_SUCCEEDED,
  InstanceState.INSTANCE_STATE_FAILED,
  InstanceState.INSTANCE_STATE_SKIPPED,
]);
const FINAL_JOB = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

export interface CommandGroups {
  readonly program: Command;
  readonly connectors: Command;
  readonly groups: Command;
  readonly jobs: Command;
  readonly run: Run;
  readonly out: Out;
  readonly json: (value: unknown) => void;
  /** Milliseconds between two looks at a running backfill or job (tests shorten it). */
  readonly pollMs?: number;
}

/** connectors validate, groups update, pause, resume, backfill, jobs watch and jobs cancel. */
export function addMoreCommands(c: CommandGroups): void {
  const { run, out, json } = c;
  const pollMs = c.pollMs ?? Number(process.env.SLUICE_CLI_POLL_MS ?? 500);

  c.connectors
    .command('validate')
    .description("check a connector's options without creating anything")
    .argument('<connector>')
    .addOption(
      new Option('--role <role>', 'which side the options are for').choices(['source', 'sink']).default('source'),
    )
    .option('-f, --file <path>', 'the options as JSON or YAML')
    .option('--options <json>', 'the options inline, as a JSON object')
    .action(
      run(async (cl, g, id: string, opts: { role: string; file?: string; options?: string }) => {
        const options = await optionsArg(opts);
        const res = await cl.call(cl.catalog, cl.catalog.validateOptions, {
          connectorId: id,
          role: opts.role === 'sink' ? ConnectorRole.CONNECTOR_ROLE_SINK : ConnectorRole.CONNECTOR_ROLE_SOURCE,
          options,
        });
        if (g.json) json(ValidateOptionsResponse.toJSON(res));
        else if (res.valid) out(`valid: ${id} ${opts.role} options\n`);
        if (!res.valid) {
          throw new CommandFailure(
            status.INVALID_ARGUMENT,
            'INVALID_ARGUMENT',
            `${id} ${opts.role} options are not valid`,
            res.errors.map((e) => ({
              path: e.path,
              message: e.message.startsWith(`${e.path}: `)
                ? e.message.slice(e.path.length + 2)
                : e.message || `expected ${e.expected}, got ${e.received}`,
            })),
            g.json === true,
          );
        }
      }),
    );

  c.groups
    .command('update')
    .description('replace a group with the file (its version is the one you read: optimistic lock)')
    .requiredOption('-f, --file <path>', 'the group as JSON or YAML (proto3 JSON field names)')
    .action(
      run(async (cl, g, opts: { file: string }) => {
        const parsed = resolveGroupTimes(await readObject('--file', opts.file));
        const body = 'group' in parsed ? parsed : { group: parsed };
        const res = await cl.call(cl.operator, cl.operator.updateGroup, UpdateGroupRequest.fromJSON(body));
        if (g.json) return json(UpdateGroupResponse.toJSON(res));
        out(`updated ${res.group?.groupId ?? ''} (version ${res.group?.version ?? '?'})\n`);
      }),
    );

  for (const verb of ['pause', 'resume'] as const) {
    c.program
      .command(verb)
      .description(verb === 'pause' ? "stop firing a group's windows" : "fire a paused group's windows again")
      .argument('<group>')
      .action(
        run(async (cl, g, id: string) => {
          if (verb === 'pause') {
            const res = await cl.call(cl.schedule, cl.schedule.pauseSchedule, { groupId: id });
            if (g.json) return json(PauseScheduleResponse.toJSON(res));
            out(`${id}: ${enumName(scheduleStatusToJSON(res.schedule?.status ?? 0), 'SCHEDULE_STATUS_')}\n`);
          } else {
            const res = await cl.call(cl.schedule, cl.schedule.resumeSchedule, { groupId: id });
            if (g.json) return json(ResumeScheduleResponse.toJSON(res));
            out(`${id}: ${enumName(scheduleStatusToJSON(res.schedule?.status ?? 0), 'SCHEDULE_STATUS_')}\n`);
          }
        }),
      );
  }

  c.program
    .command('backfill')
    .description('run past windows of a group again: missing ones, failed ones or all')
    .argument('<group>')
    .requiredOption('--from <time>', 'first window start (ISO 8601 or duration like -2d)')
    .requiredOption('--to <time>', 'windows starting before this (ISO 8601 or duration; "0h" is now)')
    .addOption(new Option('--mode <mode>', 'which windows').choices(['missing', 'failed', 'all']).default('missing'))
    .option('--max-parallel <n>', 'windows running at once', '1')
    .option('--reverse', 'newest window first')
    .option('--dry-run', 'list the windows, run nothing')
    .option('--no-wait', 'start it and return (no progress, no waiting for the windows)')
    .action(
      run(
        async (
          cl,
          g,
          id: string,
          opts: {
            from: string;
            to: string;
            mode: string;
            maxParallel: string;
            reverse?: boolean;
            dryRun?: boolean;
            wait: boolean;
          },
        ) => {
          const maxParallel = Number(opts.maxParallel);
          if (!/^\d+$/.test(opts.maxParallel))
            throw new UsageError('--max-parallel', 'an integer from 1 to 100', opts.maxParallel);
          const res = await cl.call(cl.schedule, cl.schedule.backfill, {
            groupId: id,
            fromTime: parseTime('--from', opts.from),
            toTime: parseTime('--to', opts.to),
            mode: backfillModeFromJSON(`BACKFILL_MODE_${opts.mode.toUpperCase()}`) as BackfillMode,
            maxParallel,
            reverse: opts.reverse ?? false,
            dryRun: opts.dryRun ?? false,
          });
          if (opts.dryRun || !opts.wait) {
            if (g.json) return json(BackfillResponse.toJSON(res));
            out(
              table(
                ['WINDOW START (UTC)', 'WINDOW END (UTC)', 'START (group zone)'],
                res.windows.map((w) => [epoch(w.start), epoch(w.end), w.startLocal]),
              ),
            );
            out(
              `${res.windows.length} window${res.windows.length === 1 ? '' : 's'} ${opts.dryRun ? 'would run (dry run)' : 'started'}\n`,
            );
            return;
          }
          const final = await followWindows(
            cl,
            id,
            res.windows.map((w) => w.start),
            pollMs,
          );
          const failed = final.filter((i) => i.state === InstanceState.INSTANCE_STATE_FAILED).length;
          if (g.json) json({ ...(BackfillResponse.toJSON(res) as object), final: final.map(instanceJson) });
          else {
            out(
              table(
                ['WINDOW START (UTC)', 'STATE', 'ATTEMPT', 'ERROR'],
                final.map((i) => [
                  epoch(i.window?.start ?? 0),
                  enumName(instanceStateToJSON(i.state), 'INSTANCE_STATE_'),
                  String(i.attempt),
                  i.error,
                ]),
              ),
            );
            out(`${final.length - failed} of ${final.length} windows succeeded\n`);
          }
          if (failed > 0)
            throw new CommandFailure(
              1,
              'FAILED',
              `${failed} window${failed === 1 ? '' : 's'} failed`,
              [],
              g.json === true,
            );
        },
      ),
    );

  c.jobs
    .command('watch')
    .description('follow a job to its end: a live progress line on a terminal, then its final state')
    .argument('<job>')
    .action(run(async (cl, g, id: string) => watchJob(cl, g, id, out, json)));

  c.jobs
    .command('cancel')
    .argument('<job>')
    .action(
      run(async (cl, g, id: string) => {
        const res = await cl.call(cl.operator, cl.operator.cancelJob, { jobId: id });
        if (g.json) return json(CancelJobResponse.toJSON(res));
        out(`${id}: ${enumName(jobStateToJSON(res.job?.state ?? 0), 'JOB_STATE_')}\n`);
      }),
    );
}

async function optionsArg(opts: { file?: string; options?: string }): Promise<Record<string, unknown>> {
  if (opts.file && opts.options)
    throw new UsageError('--options', 'either --file or --options, not both', opts.options);
  if (opts.file) return readObject('--file', opts.file);
  if (opts.options === undefined) throw new UsageError('--options', 'the options (--options JSON or -f FILE)', '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(opts.options);
  } catch {
    throw new UsageError('--options', 'a JSON object', opts.options);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError('--options', 'a JSON object', opts.options);
  return parsed as Record<string, unknown>;
}

const instanceJson = (i: Instance) => ({
  windowStart: String(i.window?.start ?? 0),
  state: instanceStateToJSON(i.state),
  attempt: i.attempt,
  error: i.error,
});

/** Polls the group's instances until every given window reached a final state; a progress bar meanwhile. */
async function followWindows(
  cl: Clients,
  groupId: string,
  starts: readonly number[],
  pollMs: number,
): Promise<Instance[]> {
  const progress = new ProgressLine(stderrProgress());
  if (starts.length === 0) return [];
  const from = Math.min(...starts);
  const to = Math.max(...starts) + 1;
  const wanted = new Set(starts);
  for (;;) {
    const seen = new Map<number, Instance>();
    let pageToken = '';
    do {
      const page = await cl.call(cl.schedule, cl.schedule.listInstances, {
        groupId,
        states: [],
        windowFrom: from,
        windowTo: to,
        pageSize: 500,
        pageToken,
      });
      for (const i of page.instances) if (wanted.has(i.window?.start ?? -1)) seen.set(i.window!.start, i);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const done = [...seen.values()].filter((i) => FINAL_INSTANCE.has(i.state));
    const failed = done.filter((i) => i.state === InstanceState.INSTANCE_STATE_FAILED).length;
    const running = seen.size - done.length;
    progress.update(
      bar(done.length, wanted.size, `${done.length}/${wanted.size} windows, ${running} running, ${failed} failed`),
    );
    if (done.length === wanted.size) {
      progress.done();
      return [...seen.values()].sort((a, b) => (a.window?.start ?? 0) - (b.window?.start ?? 0));
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** WatchJob until the job ends; exits 1 unless it succeeded. */
async function watchJob(cl: Clients, g: Globals, id: string, out: Out, json: (v: unknown) => void): Promise<void> {
  const progress = new ProgressLine(stderrProgress());
  let last: Job | undefined;
  let sample: { records: number; at: number } | undefined;
  let perSecond = 0;
  await new Promise<void>((resolve, reject) => {
    const stream = cl.operator.watchJob({ jobId: id }, cl.metadata);
    stream.on('data', (res: { job?: Job }) => {
      if (!res.job) return;
      last = res.job;
      const records = res.job.progress?.records ?? 0;
      const now = Date.now();
      if (!sample || now - sample.at >= 1000) {
        if (sample) perSecond = rate(sample, records, now);
        sample = { records, at: now };
      }
      progress.update(
        `${enumName(jobStateToJSON(res.job.state), 'JOB_STATE_')}  ${records} records  ${Math.round(perSecond)} records/s`,
      );
      if (FINAL_JOB.has(res.job.state)) stream.cancel();
    });
    stream.on('error', (err: { code?: number }) =>
      err.code === status.CANCELLED && last && FINAL_JOB.has(last.state) ? resolve() : reject(err as Error),
    );
    stream.on('end', () => resolve());
  });
  progress.done();
  if (!last) throw new CommandFailure(status.NOT_FOUND, 'NOT_FOUND', `job ${id} sent nothing`, [], g.json === true);
  if (g.json) json(GetJobResponse.toJSON({ job: last }));
  else {
    const took =
      last.finishedAt && last.startedAt ? ` in ${((last.finishedAt - last.startedAt) / 1000).toFixed(1)}s` : '';
    out(
      `${id}: ${enumName(jobStateToJSON(last.state), 'JOB_STATE_')}, ${last.progress?.records ?? 0} records${took}${last.error ? `\nerror: ${last.error}` : ''}\n`,
    );
  }
  if (last.state !== JobState.JOB_STATE_SUCCEEDED)
    throw new CommandFailure(
      1,
      enumName(jobStateToJSON(last.state), 'JOB_STATE_'),
      `job ${id} did not succeed`,
      [],
      g.json === true,
      true,
    );
}
