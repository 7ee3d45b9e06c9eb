/**
 * Chaos, the short version that runs in CI: 3 schedule and 2 operator replicas as processes on PostgreSQL,
 * groups of one-second windows (datagen → file and PostgreSQL → PostgreSQL), a random process killed with
 * SIGKILL and started again every 3 s (test/helpers/chaos.ts). No window may be lost or doubled, every window
 * must end SUCCEEDED, and every row must be written exactly once. `npm run bench -- chaos` runs the 2-minute
 * version with 50 groups (docs/benchmarks.md). SLUICE_CHAOS_MS and SLUICE_CHAOS_GROUPS change the size here.
 */
import test from 'ava';
import { runChaos } from './helpers/chaos.js';
import { probePostgres } from './helpers/databases.js';
import { gate } from './helpers/integration.js';

const pgTest = gate(test, await probePostgres());
const CHAOS_MS = Number(process.env.SLUICE_CHAOS_MS ?? 12_000);
const GROUPS = Number(process.env.SLUICE_CHAOS_GROUPS ?? 6);

pgTest.serial(
  `chaos: 3 schedule and 2 operator replicas, one killed every 3 s for ${CHAOS_MS / 1000} s, ${GROUPS} groups: no window lost or doubled, every window ends, every row once`,
  async (t) => {
    // Starting five processes and a restart every 3 s on shared cores: the run is waited on, not timed.
    t.timeout(CHAOS_MS + 240_000);
    const report = await runChaos({
      groups: GROUPS,
      chaosMs: CHAOS_MS,
      killEveryMs: 3000,
      failoverMs: 2000,
      drainMs: 90_000,
      log: (line) => t.log(line),
    });
    t.log(JSON.stringify(report));
    t.true(report.deaths.split(' ').length >= 2, `processes killed: ${report.deaths}`);
    t.is(report.lost, 0, 'no window lost');
    t.is(report.duplicated, 0, 'no window doubled');
    t.is(report.unfinished, 0, 'every window SUCCEEDED');
    t.is(report.windowsWithTwoJobs, 0, 'one job per window');
    t.is(report.duplicatedRows, 0, 'no row written twice');
    t.is(report.missingRows, 0, 'no row missing');
  },
);
