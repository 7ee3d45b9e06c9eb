/**
 * The connector read benchmark alone:
 *
 *   node --conditions=development --import tsx bench/connectors-main.ts [records ...] [postgres|mysql|kafka ...]
 *
 * Sizes default to 100000 and 1000000 (each divisible by 16, the Kafka partitions); systems to all three. Needs PostgreSQL and
 * MariaDB/MySQL (SLUICE_TEST_PG_URL, SLUICE_TEST_MYSQL_URL) and cc + librdkafka-dev for the Kafka mock;
 * a system that is absent is SKIPPED. See docs/benchmarks.md (section 3).
 */
import { availableParallelism, cpus } from 'node:os';
import type { System } from './connectors-child.js';
import { benchConnectors } from './connectors.js';

const out = (line = '') => process.stdout.write(`${line}\n`);
const args = process.argv.slice(2);
const sizes = args.filter((a) => /^\d+$/.test(a)).map(Number);
const systems = args.filter((a): a is System => a === 'postgres' || a === 'mysql' || a === 'kafka');
const unknown = args.filter((a) => !/^\d+$/.test(a) && !systems.includes(a as System));
if (unknown.length > 0)
  throw new Error(`unknown arguments ${unknown.join(' ')}: give sizes (integers) and systems (postgres, mysql, kafka)`);

out(
  `Sluice connector benchmark  node ${process.version}  ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'})  ${process.platform}/${process.arch}  ${new Date().toISOString()}`,
);
out();
benchConnectors(out, { ...(sizes.length > 0 ? { sizes } : {}), ...(systems.length > 0 ? { systems } : {}) }).then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    console.error('benchmark failed:', err);
    process.exitCode = 1;
  },
);
