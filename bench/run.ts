/**
 * Sluice benchmarks: `npm run bench`. Prints a table; exits non-zero only when something fails
 * (a target that is missed is reported as MISSED). See docs/benchmarks.md.
 */
import { cpus, availableParallelism } from 'node:os';
import { benchLoadPlugins, type LoadRun, PLUGIN_COUNT } from './load-plugins.js';
import { benchLoadPluginsPlainNode } from './plain-node.js';
import { benchResolveBoundaries } from './resolve-boundaries.js';
import { fmtMs, fmtRatio, now } from './stats.js';

const LOAD_TARGET_MS = 1000;
const RPC_RATIO_TARGET = 1.5;
const LOAD_RUNS = 3;

const out = (line = '') => process.stdout.write(`${line}\n`);
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

function table(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  rows.forEach((r, n) => {
    out(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    if (n === 0) out(widths.map((w) => '-'.repeat(w)).join('  '));
  });
}

/** Suites, in the order they run; `npm run bench -- schedule runner` runs only those named. */
const SUITES = ['foundation', 'connectors', 'schedule', 'runner', 'cron', 'jobs', 'chaos'] as const;

async function main(): Promise<void> {
  const started = now();
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = asked.filter((a) => !(SUITES as readonly string[]).includes(a));
  if (unknown.length > 0)
    throw new Error(`unknown suite(s) ${unknown.join(', ')}; expected some of ${SUITES.join(', ')}`);
  const run = (suite: (typeof SUITES)[number]) => asked.length === 0 || asked.includes(suite);
  out(
    `Sluice benchmarks  node ${process.version}  ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'})  ${process.platform}/${process.arch}`,
  );
  out();
  if (run('foundation')) await foundation();
  if (run('connectors')) await (await import('./connectors.js')).benchConnectors(out);
  if (run('schedule')) await (await import('./schedule.js')).benchSchedule(out);
  if (run('runner')) await (await import('./runner.js')).benchRunner(out);
  if (run('cron')) await (await import('./cron.js')).benchCron(out);
  if (run('jobs')) await (await import('./small-jobs.js')).benchSmallJobs(out);
  if (run('chaos')) await (await import('./chaos.js')).benchChaos(out);
  out(`total ${((now() - started) / 1000).toFixed(1)} s`);
}

/** Plugin loading and ResolveBoundaries: the foundation's figures. */
async function foundation(): Promise<void> {
  // 1. Plugin discovery and loading. Run 1 is the cold one (first loadPlugins in this process);
  // the later runs use fresh folders too, so every module is imported again.
  const check = (runs: readonly LoadRun[], where: string) => {
    for (const run of runs) {
      if (run.connectors !== PLUGIN_COUNT || run.problems !== 0) {
        throw new Error(
          `${where}: loadPlugins loaded ${run.connectors}/${PLUGIN_COUNT} connectors with ${run.problems} problem(s)`,
        );
      }
    }
    return runs;
  };
  const loads: LoadRun[] = [];
  for (let i = 0; i < LOAD_RUNS; i++) loads.push(await benchLoadPlugins(PLUGIN_COUNT));
  check(loads, 'npm run bench (tsx)');
  const plain = check(await benchLoadPluginsPlainNode(LOAD_RUNS, PLUGIN_COUNT), 'plain node');

  out(
    `1. Plugin discovery + loading: ${PLUGIN_COUNT} connector plugins, loadPlugins({ extraDirs: [dir] }), fresh folder per run`,
  );
  const loadRows = (label: string, runs: readonly LoadRun[]) =>
    runs.map((r, i) => [
      `${label}, ${i === 0 ? 'cold' : `run ${i + 1}`}`,
      fmtMs(r.loadMs),
      fmtMs(r.manifestsMs),
      fmtRatio(r.loadMs / r.manifestsMs),
      Number.isNaN(r.importsMs) ? '-' : fmtMs(r.importsMs),
      Number.isNaN(r.importsMs) ? '-' : fmtRatio(r.loadMs / r.importsMs),
      i === 0 && label.startsWith('plain') ? `< ${fmtMs(LOAD_TARGET_MS)}` : '',
      i === 0 && label.startsWith('plain') ? verdict(r.loadMs < LOAD_TARGET_MS) : '',
    ]);
  table([
    ['run', 'loadPlugins', 'manifests', 'ratio', 'imports', 'ratio', 'target', 'result'],
    ...loadRows('plain node, built (as npm start)', plain),
    ...loadRows('under tsx (sources, dev only)', loads),
  ]);
  out(
    `   manifests = only readFile + JSON.parse of the ${PLUGIN_COUNT} plugin.json; imports = only import() of ${PLUGIN_COUNT} identical entry modules (second folder)`,
  );
  out(
    `   every run: ${PLUGIN_COUNT}/${PLUGIN_COUNT} connectors loaded, 0 problems; the target applies to the built tree, as npm start runs it`,
  );
  out();

  // 2. ResolveBoundaries over loopback versus a no-op grpc-js call, interleaved.
  const rpc = await benchResolveBoundaries({ warmup: 500, calls: 5000, block: 500 });
  out(
    `2. ResolveBoundaries over loopback: ${rpc.sluice.samples} sequential calls per series after ${rpc.warmup} warm-up, interleaved in blocks of ${rpc.block}`,
  );
  table([
    ['series', 'p50', 'p99'],
    ...[rpc.sluice, rpc.noopSamePayload, rpc.noopEmpty].map((s) => [s.name, fmtMs(s.p50), fmtMs(s.p99)]),
  ]);
  out();
  const ratio = (ref: typeof rpc.sluice) => [rpc.sluice.p50 / ref.p50, rpc.sluice.p99 / ref.p99] as const;
  const [p50Same, p99Same] = ratio(rpc.noopSamePayload);
  const [p50Empty, p99Empty] = ratio(rpc.noopEmpty);
  table([
    ['Sluice / reference', 'p50/p50', 'p99/p99', 'target', 'result'],
    [
      'vs no-op, same payload',
      fmtRatio(p50Same),
      fmtRatio(p99Same),
      `<= ${fmtRatio(RPC_RATIO_TARGET)}`,
      verdict(p50Same <= RPC_RATIO_TARGET && p99Same <= RPC_RATIO_TARGET),
    ],
    [
      'vs no-op, empty messages',
      fmtRatio(p50Empty),
      fmtRatio(p99Empty),
      `<= ${fmtRatio(RPC_RATIO_TARGET)}`,
      verdict(p50Empty <= RPC_RATIO_TARGET && p99Empty <= RPC_RATIO_TARGET),
    ],
  ]);
  out();
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    console.error('benchmark failed:', err);
    process.exitCode = 1;
  },
);
