/**
 * Runs the schedule benchmark alone:
 *
 *   node --conditions=development --import tsx bench/schedule-main.ts [--name=value ...]
 *
 * Any ScheduleBenchOptions field may be overridden, e.g. --sizes=10000,100000 --rate=100
 * --registerUpTo=100000 (register every size through ScheduleService.register), --timeStopAlways,
 * --setTimeoutClock (diagnostic: also run Sluice on a plain setTimeout clock), --stressRate=0.
 * The burst alone: --sizes= --stressRate=0 --rpcCalls=0; on PostgreSQL only: also --burstSqlite=false; its
 * instant 15 s after its setup began (the default lead allows 40 ms a registration): --burstLeadMs=15000.
 * Only RegisterSchedule: --sizes= --stressRate=0 --burst=0; add --rpcChargeCheckpoints to count each Sluice
 * block's SQLite WAL checkpoint in that block (see ScheduleBenchOptions.rpcChargeCheckpoints).
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { DEFAULTS, type ScheduleBenchOptions, benchSchedule } from './schedule.js';

const out = (line = '') => process.stdout.write(`${line}\n`);

function parseArgs(argv: readonly string[]): Partial<ScheduleBenchOptions> {
  const options: Record<string, unknown> = {};
  for (const arg of argv) {
    const m = /^--([A-Za-z]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1]! in DEFAULTS))
      throw new Error(`unknown argument ${arg}; options: ${Object.keys(DEFAULTS).join(', ')}`);
    const [, name, value] = m as unknown as [string, keyof ScheduleBenchOptions, string | undefined];
    const current = DEFAULTS[name];
    if (typeof current === 'boolean') options[name] = value === undefined || value === 'true';
    else if (Array.isArray(current)) options[name] = value ? value.split(',').map(Number) : [];
    else options[name] = Number(value);
  }
  return options as Partial<ScheduleBenchOptions>;
}

const options = parseArgs(process.argv.slice(2));
out(
  `Sluice schedule benchmark  node ${process.version}  ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'})  load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}  ${new Date().toISOString()}`,
);
out();
benchSchedule(out, options).then(
  () => {
    out(
      `load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    process.exitCode = 0;
  },
  (err: unknown) => {
    console.error('benchmark failed:', err);
    process.exitCode = 1;
  },
);
