import { Command, Option } from 'commander';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { readObject, resolveGroupTimes } from './files.js';
import { addMoreCommands } from './more-commands.js';
import { coverageStrip } from './strip.js';
import {
  connectorRoleToJSON,
  GetConnectorResponse,
  ListConnectorsResponse,
  ListPluginProblemsResponse,
} from '../../proto/gen/sluice/catalog/v1/catalog.js';
import {
  ApproveGroupResponse,
  CreateGroupRequest,
  CreateGroupResponse,
  DeleteGroupResponse,
  GetGroupResponse,
  GetJobResponse,
  groupStatusToJSON,
  jobStateToJSON,
  ListGroupsResponse,
  ListJobsResponse,
} from '../../proto/gen/sluice/operator/v1/operator.js';
import {
  FireDueResponse,
  instanceStateToJSON,
  ListInstancesResponse,
  PreviewWindowsResponse,
  ScheduleStatus,
  type Instance,
  type Window,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { status } from '@grpc/grpc-js';
import { Clients, isServiceError } from './client.js';
import { enumName, epoch, table } from './output.js';
import { bothTimes, parseTime, UsageError } from './time.js';

export interface Globals {
  addr: string;
  catalogAddr?: string;
  scheduleAddr?: string;
  operatorAddr?: string;
  token?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  json?: boolean;
}

export type Out = (text: string) => void;

/** Wraps a command's action: clients for the global options, closed afterwards. */
export type Run = <A extends unknown[]>(
  action: (c: Clients, g: Globals, ...args: A) => Promise<void>,
) => (...args: A) => Promise<void>;

/** Builds the `sluice` program; `out` receives everything printed on stdout. */
export function buildProgram(out: Out): Command {
  const program = new Command('sluice')
    .description('Command-line client of Sluice (gRPC)')
    .addOption(
      new Option('--addr <host:port>', 'address of Sluice (the all-in-one process)')
        .env('SLUICE_ADDR')
        .default('127.0.0.1:50051'),
    )
    .addOption(
      new Option('--catalog-addr <host:port>', 'the catalog service, where services run apart').env(
        'SLUICE_CATALOG_ADDR',
      ),
    )
    .addOption(
      new Option('--schedule-addr <host:port>', 'the schedule service, where services run apart').env(
        'SLUICE_SCHEDULE_ADDR',
      ),
    )
    .addOption(
      new Option('--operator-addr <host:port>', 'the operator service, where services run apart').env(
        'SLUICE_OPERATOR_ADDR',
      ),
    )
    .addOption(new Option('--token <token>', 'bearer token sent as authorization metadata').env('SLUICE_TOKEN'))
    .option('--tls', 'connect with TLS (system roots)')
    .option('--tls-ca <file>', 'TLS: trust this CA (PEM) instead of the system roots')
    .option('--tls-cert <file>', 'TLS: client certificate (PEM), for mutual TLS')
    .option('--tls-key <file>', 'TLS: client key (PEM), for mutual TLS')
    .option('--json', 'print the response as JSON (proto3 JSON mapping)');

  /** Runs an action with clients for the global options, closing them afterwards. */
  const run: Run =
    <A extends unknown[]>(action: (c: Clients, g: Globals, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const g = program.opts<Globals>();
      const clients = new Clients({
        addr: g.addr,
        ...(g.catalogAddr ? { catalogAddr: g.catalogAddr } : {}),
        ...(g.scheduleAddr ? { scheduleAddr: g.scheduleAddr } : {}),
        ...(g.operatorAddr ? { operatorAddr: g.operatorAddr } : {}),
        ...(g.token ? { token: g.token } : {}),
        tls: g.tls ?? false,
        ...(g.tlsCa ? { tlsCaFile: g.tlsCa } : {}),
        ...(g.tlsCert ? { tlsCertFile: g.tlsCert } : {}),
        ...(g.tlsKey ? { tlsKeyFile: g.tlsKey } : {}),
      });
      try {
        await action(clients, g, ...args);
      } finally {
        clients.close();
      }
    };
  const json = (value: unknown) => out(JSON.stringify(value, null, 2) + '\n');

  const connectors = program.command('connectors').description('connectors in the catalog');
  connectors.command('list').action(
    run(async (c, g) => {
      const res = await c.call(c.catalog, c.catalog.listConnectors, { pageSize: 0, pageToken: '', role: 0 });
      if (g.json) return json(ListConnectorsResponse.toJSON(res));
      out(
        table(
          ['ID', 'ROLES', 'VERSION', 'DESCRIPTION'],
          res.connectors.map((x) => [
            x.id,
            x.roles.map((r) => enumName(connectorRoleToJSON(r), 'CONNECTOR_ROLE_')).join(','),
            x.version,
            x.description,
          ]),
        ),
      );
    }),
  );
  connectors
    .command('show')
    .argument('<connector>')
    .action(
      run(async (c, g, id: string) => {
        const res = await c.call(c.catalog, c.catalog.getConnector, { connectorId: id });
        json(GetConnectorResponse.toJSON(res));
        void g;
      }),
    );

  program
    .command('plugins')
    .description('plugin loading')
    .command('problems')
    .action(
      run(async (c, g) => {
        const res = await c.call(c.catalog, c.catalog.listPluginProblems, {});
        if (g.json) return json(ListPluginProblemsResponse.toJSON(res));
        const rows =
          (ListPluginProblemsResponse.toJSON(res) as { problems?: Record<string, unknown>[] }).problems ?? [];
        if (rows.length === 0) return out('no plugin problems\n');
        for (const p of rows) out(JSON.stringify(p) + '\n');
      }),
    );

  const groups = program.command('groups').description('sync task groups');
  groups
    .command('create')
    .requiredOption('-f, --file <path>', 'the group as JSON or YAML (proto3 JSON field names)')
    .action(
      run(async (c, g, opts: { file: string }) => {
        const parsed = resolveGroupTimes(await readObject('--file', opts.file));
        const body = 'group' in parsed ? parsed : { group: parsed };
        const res = await c.call(c.operator, c.operator.createGroup, CreateGroupRequest.fromJSON(body));
        if (g.json) return json(CreateGroupResponse.toJSON(res));
        out(
          `created ${res.group?.groupId ?? ''} (${enumName(groupStatusToJSON(res.group?.status ?? 0), 'GROUP_STATUS_')})\n`,
        );
      }),
    );
  groups.command('list').action(
    run(async (c, g) => {
      const res = await c.call(c.operator, c.operator.listGroups, {
        pageSize: 0,
        pageToken: '',
        statuses: [],
        includeDeleted: false,
      });
      if (g.json) return json(ListGroupsResponse.toJSON(res));
      out(
        table(
          ['GROUP', 'STATUS', 'VERSION', 'DESCRIPTION'],
          res.groups.map((x) => [
            x.groupId,
            enumName(groupStatusToJSON(x.status), 'GROUP_STATUS_'),
            String(x.version),
            x.description,
          ]),
        ),
      );
    }),
  );
  groups
    .command('show')
    .argument('<group>')
    .action(
      run(async (c, _g, id: string) => {
        const res = await c.call(c.operator, c.operator.getGroup, { groupId: id });
        json(GetGroupResponse.toJSON(res));
      }),
    );
  groups
    .command('approve')
    .argument('<group>')
    .option('--version <n>', 'expected version (optimistic lock)', '0')
    .action(
      run(async (c, g, id: string, opts: { version: string }) => {
        const res = await c.call(c.operator, c.operator.approveGroup, {
          groupId: id,
          version: intOption('--version', opts.version),
        });
        if (g.json) return json(ApproveGroupResponse.toJSON(res));
        out(`approved ${id} (${enumName(groupStatusToJSON(res.group?.status ?? 0), 'GROUP_STATUS_')})\n`);
      }),
    );
  groups
    .command('delete')
    .argument('<group>')
    .option('--version <n>', 'expected version (optimistic lock)', '0')
    .action(
      run(async (c, g, id: string, opts: { version: string }) => {
        const res = await c.call(c.operator, c.operator.deleteGroup, {
          groupId: id,
          version: intOption('--version', opts.version),
        });
        if (g.json) return json(DeleteGroupResponse.toJSON(res));
        out(`deleted ${id}\n`);
      }),
    );

  program
    .command('schedules')
    .description('schedules of groups')
    .command('preview')
    .argument('<group>')
    .option('--count <n>', 'how many windows', '10')
    .option('--from <time>', 'first window at or after (ISO 8601 or duration like -2h)')
    .action(
      run(async (c, g, id: string, opts: { count: string; from?: string }) => {
        const fromTime = opts.from ? parseTime('--from', opts.from) : 0;
        const count = intOption('--count', opts.count);
        const res = await c
          .call(c.schedule, c.schedule.previewWindows, { groupId: id, info: undefined, fromTime, count })
          .catch(async (err: unknown) => {
            // A group not approved yet has no registered schedule: preview the schedule it holds.
            if (!isServiceError(err) || err.code !== status.NOT_FOUND) throw err;
            const { group } = await c.call(c.operator, c.operator.getGroup, { groupId: id });
            if (!group?.schedule) throw err;
            return c.call(c.schedule, c.schedule.previewWindows, {
              groupId: '',
              info: { ...group.schedule, groupId: id },
              fromTime,
              count,
            });
          });
        if (g.json) return json(PreviewWindowsResponse.toJSON(res));
        const marks = dstMarks(res.windows);
        out(
          table(
            ['START (UTC)', 'END (UTC)', 'DUE (UTC)', 'START (group zone)', 'START (local)', 'DST'],
            res.windows.map((w, i) => [
              epoch(w.start),
              epoch(w.end),
              epoch(w.dueTime),
              w.startLocal,
              bothTimes(w.start).local,
              marks[i] ?? '',
            ]),
          ),
        );
      }),
    );

  const jobs = program.command('jobs').description('jobs the operator ran');
  jobs
    .command('list')
    .option('--group <group>', 'only this group')
    .option('--limit <n>', 'page size', '50')
    .option('-q, --quiet', 'job ids only, one a line (for $(...) in scripts)')
    .action(
      run(async (c, g, opts: { group?: string; limit: string; quiet?: boolean }) => {
        const res = await c.call(c.operator, c.operator.listJobs, {
          groupId: opts.group ?? '',
          states: [],
          windowFrom: 0,
          windowTo: 0,
          pageSize: intOption('--limit', opts.limit),
          pageToken: '',
        });
        if (g.json) return json(ListJobsResponse.toJSON(res));
        if (opts.quiet) return out(res.jobs.map((j) => `${j.jobId}\n`).join(''));
        out(
          table(
            ['JOB', 'GROUP', 'STREAM', 'WINDOW', 'STATE', 'RECORDS', 'STARTED (UTC)'],
            res.jobs.map((j) => [
              j.jobId,
              j.groupId,
              j.streamId,
              j.boundaries?.boundaryType === BoundaryType.BOUNDARY_TYPE_TIME
                ? epoch(Number(j.boundaries.lowerBound))
                : (j.boundaries?.lowerBound ?? ''),
              enumName(jobStateToJSON(j.state), 'JOB_STATE_'),
              String(j.progress?.records ?? 0),
              epoch(j.startedAt),
            ]),
          ),
        );
      }),
    );
  jobs
    .command('show')
    .argument('<job>')
    .action(
      run(async (c, _g, id: string) => {
        const res = await c.call(c.operator, c.operator.getJob, { jobId: id });
        json(GetJobResponse.toJSON(res));
      }),
    );

  program
    .command('fire')
    .description('fire the due windows of a group now (as of --at)')
    .argument('<group>')
    .option('--at <time>', 'as of this time (ISO 8601 or duration like -2h); default now')
    .action(
      run(async (c, g, id: string, opts: { at?: string }) => {
        const res = await c.call(c.schedule, c.schedule.fireDue, {
          groupId: id,
          asOf: opts.at ? parseTime('--at', opts.at) : Date.now(),
        });
        if (g.json) return json(FireDueResponse.toJSON(res));
        out(instancesTable(res.instances));
        out(`next due: ${res.nextDueTime ? epoch(res.nextDueTime) : '-'}\n`);
      }),
    );

  program
    .command('instances')
    .description('which windows of a group ran: a coverage strip (one character a window), or the ledger')
    .argument('<group>')
    .option('--from <time>', "first window (ISO 8601 or duration like -2d); default a day ago or the schedule's start")
    .option('--to <time>', 'windows starting before this; default now')
    .option('--table', 'the ledger as a table (state, attempt, jobs) instead of the strip')
    .action(
      run(async (c, g, id: string, opts: { from?: string; to?: string; table?: boolean }) => {
        const now = Date.now();
        const to = opts.to ? parseTime('--to', opts.to) : now;
        let from = opts.from ? parseTime('--from', opts.from) : undefined;
        const schedule =
          g.json || opts.table ? undefined : await c.call(c.schedule, c.schedule.getSchedule, { groupId: id });
        from ??= g.json || opts.table ? 0 : Math.max(now - 86_400_000, schedule?.schedule?.info?.startTime ?? 0);
        const instances: Instance[] = [];
        let pageToken = '';
        do {
          const page = await c.call(c.schedule, c.schedule.listInstances, {
            groupId: id,
            states: [],
            windowFrom: from,
            windowTo: opts.to ? to : 0,
            pageSize: 500,
            pageToken,
          });
          instances.push(...page.instances);
          pageToken = page.nextPageToken;
        } while (pageToken);
        if (g.json) return json(ListInstancesResponse.toJSON({ instances, nextPageToken: '' }));
        if (opts.table) return out(instancesTable(instances));
        const preview = await c.call(c.schedule, c.schedule.previewWindows, {
          groupId: id,
          info: undefined,
          fromTime: from,
          count: 1000,
        });
        const windows = preview.windows.filter((w) => w.start < to);
        const paused = schedule?.schedule?.status === ScheduleStatus.SCHEDULE_STATUS_PAUSED;
        out(coverageStrip(windows, instances, { now, paused }));
        if (preview.windows.length === 1000 && windows.length === 1000)
          out('(first 1000 windows; narrow --from/--to)\n');
      }),
    );

  addMoreCommands({ program, connectors, groups, jobs, run, out, json });
  return program;
}

function instancesTable(instances: readonly Instance[]): string {
  return table(
    ['WINDOW START (UTC)', 'WINDOW END (UTC)', 'STATE', 'ATTEMPT', 'JOBS'],
    instances.map((i) => [
      // An OFFSET window has no window times: its bounds stand in their place.
      i.window ? epoch(i.window.start) : (i.boundaries?.lowerBound ?? ''),
      i.window ? epoch(i.window.end) : (i.boundaries?.upperBound ?? ''),
      enumName(instanceStateToJSON(i.state), 'INSTANCE_STATE_'),
      String(i.attempt),
      i.jobIds.join(','),
    ]),
  );
}

function intOption(field: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(field, 'a non-negative integer', text);
  return Number(text);
}

/** The UTC offset at the end of an ISO 8601 local time (`…+02:00`), or '' when it has none. */
function offsetOf(local: string): string {
  return /([+-]\d{2}:\d{2}|Z)$/.exec(local)?.[1] ?? '';
}

/**
 * Marks the windows whose start and end have different UTC offsets in the group's zone: the clocks
 * change before the window ends (so its local length is not its real one).
 */
function dstMarks(windows: readonly Window[]): string[] {
  return windows.map((w) => {
    const start = offsetOf(w.startLocal);
    const end = offsetOf(w.endLocal);
    return start && end && start !== end ? `clocks change by its end (${start} -> ${end})` : '';
  });
}
