/**
 * The embedded runner benchmark alone:
 *
 *   node --conditions=development --import tsx bench/runner-main.ts [records ...]
 *
 * Sizes default to 100000 and 1000000 (each divisible by 32, the Kafka partitions). Needs PostgreSQL
 * (SLUICE_TEST_PG_URL) and cc + librdkafka-dev for the Kafka mock; a pipeline whose service is absent is
 * SKIPPED. See docs/benchmarks.md (section 5).
 */
import { availableParallelism, cpus } from 'node:os';
import { benchRunner } from './runner.js';

const out = (line = '') => process.stdout.write(`${line}\n`);
const sizes = process.argv.slice(2).map(Number);

out(
  `Sluice runner benchmark  node ${process.version}  ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'})  ${process.platform}/${process.arch}  ${new Date().toISOString()}`,
);
out();
benchRunner(out, sizes.length > 0 ? { sizes } : {}).then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    console.error('benchmark failed:', err);
    process.exitCode = 1;
  },
);
