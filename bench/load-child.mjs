// Plain-node half of the loading benchmark: runs the built loader (dist/) with no TypeScript loader
// hooks, as `npm start` does. Times loadPlugins on each folder given and prints the runs as one JSON line.
import { performance } from 'node:perf_hooks';
import { loadPlugins } from '../dist/services/host/loader.js';

const runs = [];
for (const dir of process.argv.slice(2)) {
  const t0 = performance.now();
  const set = await loadPlugins({ extraDirs: [dir] });
  runs.push({ loadMs: performance.now() - t0, connectors: set.connectors.size, problems: set.problems.length });
}
process.stdout.write(`${JSON.stringify(runs)}\n`);
