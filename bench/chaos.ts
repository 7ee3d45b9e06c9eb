/**
 * Chaos, the long run (docs/benchmarks.md, section 7; docs/operations.md): 3 schedule and 2 operator replicas as
 * processes on PostgreSQL, 50 groups of one-second windows (half datagen → file, half PostgreSQL → PostgreSQL),
 * a random process killed with SIGKILL and started again every 3 s for 2 minutes (test/helpers/chaos.ts, the
 * scenario test/chaos.test.ts runs shorter in CI). Prints windows expected, fired, lost and duplicated, the rows
 * checked, and the fire delay after a death; fails when a window is lost or doubled or a row is written twice.
 *
 * `npm run bench -- chaos`; SLUICE_CHAOS_MS and SLUICE_CHAOS_GROUPS change the size, SLUICE_CHAOS_PARALLELISM the
 * windows of a group that may run at once (default 4); SLUICE_CHAOS_ONLY=1 skips
 * the replica-scale figures that follow it.
 */
import { loadavg } from 'node:os';
import { runChaos } from '../test/helpers/chaos.js';
import { probePostgres } from '../test/helpers/databases.js';
import { benchReplicaScale } from './replica-scale.js';
import { fmtMs } from './stats.js';

const CHAOS_MS = Number(process.env.SLUICE_CHAOS_MS ?? 120_000);
const GROUPS = Number(process.env.SLUICE_CHAOS_GROUPS ?? 50);
const PARALLELISM = Number(process.env.SLUICE_CHAOS_PARALLELISM ?? 4);

export async function benchChaos(out: (line?: string) => void): Promise<void> {
  const pg = await probePostgres();
  if (!pg.ok) {
    out(`7. Chaos: skipped (${pg.reason})`);
    out();
    return;
  }
  out(
    `7. Chaos: 3 schedule + 2 operator processes on PostgreSQL, ${GROUPS} groups of 1 s windows (${PARALLELISM} at once per group), one process killed every 3 s for ${CHAOS_MS / 1000} s`,
  );
  const load = loadavg()[0]!.toFixed(1);
  const r = await runChaos({
    groups: GROUPS,
    chaosMs: CHAOS_MS,
    killEveryMs: 3000,
    failoverMs: 2000,
    drainMs: 900_000,
    taskParallelism: PARALLELISM,
    log: (line) => out(`   ${line}`),
  });
  const rows: [string, string][] = [
    ['load average at start', load],
    ['processes killed', `${r.deaths.split(' ').length} (${r.deaths})`],
    ['windows expected', String(r.expected)],
    ['windows fired', String(r.fired)],
    ['windows lost', String(r.lost)],
    ['windows duplicated', String(r.duplicated)],
    ['windows not SUCCEEDED', String(r.unfinished)],
    ['windows with two jobs', String(r.windowsWithTwoJobs)],
    ['rows expected', String(r.rowsExpected)],
    ['rows duplicated', String(r.duplicatedRows)],
    ['rows missing', String(r.missingRows)],
    [
      `fire delay after a death (n ${r.fireDelayAfterDeathMs.n})`,
      `p50 ${fmtMs(r.fireDelayAfterDeathMs.p50)}  p99 ${fmtMs(r.fireDelayAfterDeathMs.p99)}  max ${fmtMs(r.fireDelayAfterDeathMs.max)}`,
    ],
    ['last window ended after the kills stopped', fmtMs(r.drainedInMs)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) out(`   ${k.padEnd(width)}  ${v}`);
  out();
  // SLUICE_CHAOS_ONLY=1: the chaos run alone, without the replica-scale figures after it.
  if (process.env.SLUICE_CHAOS_ONLY !== '1') await benchReplicaScale(out);
  if (r.lost !== 0 || r.duplicated !== 0 || r.duplicatedRows !== 0 || r.windowsWithTwoJobs !== 0)
    throw new Error(`chaos: ${r.lost} lost, ${r.duplicated} duplicated windows, ${r.duplicatedRows} duplicated rows`);
}
