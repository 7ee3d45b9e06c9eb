import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
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
  type Instance,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { Clients } from './client.js';
import { enumName, epoch, table } from './output.js';
import { bothTimes, parseTime, UsageError } from './time.js';

interface Globals {
  addr: string;
  token?: string;
  tls?: boolean;
  json?: boolean;
}

type Out = (text: string) => void;

/** Builds the `sluice` program; `out` receives everything printed on stdout. */
export function buildProgram(out: Out): Command {
  const program = new Command('sluice')
    .description('Command-line client of Sluice (gRPC)')
    .addOption(
      new Option('--addr <host:port>', 'address of Sluice (the all-in-one process)')
        .env('SLUICE_ADDR')
        .default('127.0.0.1:50051'),
    )
    .addOption(new Option('--token <token>', 'bearer token sent as authorization metadata').env('SLUICE_TOKEN'))
    .option('--tls', 'connect with TLS (system roots)')
    .option('--json', 'print the response as JSON (proto3 JSON mapping)');

  /** Runs an action with clients for the global options, closing them afterwards. */
  const run =
    <A extends unknown[]>(action: (c: Clients, g: Globals, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const g = program.opts<Globals>();
      const clients = new Clients({ addr: g.addr, ...(g.token ? { token: g.token } : {}), tls: g.tls ?? false });
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
        const text = await readFile(opts.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new UsageError('--file', 'a readable file', `${opts.file} (${err.code ?? err.message})`);
        });
        let parsed: unknown;
        try {
          parsed = /\.ya?ml$/i.test(opts.file) ? parseYaml(text) : JSON.parse(text);
        } catch (err) {
          throw new UsageError('--file', 'valid JSON or YAML', (err as Error).message.split('\n')[0] ?? '');
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          throw new UsageError('--file', 'an object (a group)', typeof parsed);
        }
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
        const res = await c.call(c.schedule, c.schedule.previewWindows, {
          groupId: id,
          info: undefined,
          fromTime: opts.from ? parseTime('--from', opts.from) : 0,
          count: intOption('--count', opts.count),
        });
        if (g.json) return json(PreviewWindowsResponse.toJSON(res));
        out(
          table(
            ['START (UTC)', 'END (UTC)', 'DUE (UTC)', 'START (local)', 'END (local)'],
            res.windows.map((w) => [
              epoch(w.start),
              epoch(w.end),
              epoch(w.dueTime),
              bothTimes(w.start).local,
              bothTimes(w.end).local,
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
    .action(
      run(async (c, g, opts: { group?: string; limit: string }) => {
        const res = await c.call(c.operator, c.operator.listJobs, {
          groupId: opts.group ?? '',
          states: [],
          windowFrom: 0,
          windowTo: 0,
          pageSize: intOption('--limit', opts.limit),
          pageToken: '',
        });
        if (g.json) return json(ListJobsResponse.toJSON(res));
        out(
          table(
            ['JOB', 'GROUP', 'STATE', 'STARTED (UTC)'],
            res.jobs.map((j) => [
              j.jobId,
              j.groupId,
              enumName(jobStateToJSON(j.state), 'JOB_STATE_'),
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
    .description('the window ledger of a group')
    .argument('<group>')
    .action(
      run(async (c, g, id: string) => {
        const res = await c.call(c.schedule, c.schedule.listInstances, {
          groupId: id,
          states: [],
          windowFrom: 0,
          windowTo: 0,
          pageSize: 0,
          pageToken: '',
        });
        if (g.json) return json(ListInstancesResponse.toJSON(res));
        out(instancesTable(res.instances));
      }),
    );

  return program;
}

function instancesTable(instances: readonly Instance[]): string {
  return table(
    ['WINDOW START (UTC)', 'WINDOW END (UTC)', 'STATE', 'ATTEMPT', 'JOBS'],
    instances.map((i) => [
      epoch(i.window?.start ?? 0),
      epoch(i.window?.end ?? 0),
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
