import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generatePlugins, type LoadRun, manifestsOnly } from './load-plugins.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The loading benchmark as production runs it: a child `node` process with no TypeScript loader
 * (`npm run bench` itself runs under tsx, whose hooks see every imported module, plugin entries
 * included) importing the built loader from dist/, which `npm run bench` builds first.
 */
export async function benchLoadPluginsPlainNode(runs: number, count: number): Promise<LoadRun[]> {
  if (!existsSync(join(here, '..', 'dist', 'services', 'host', 'loader.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');
  }
  const dirs: string[] = [];
  try {
    for (let i = 0; i < runs; i++) dirs.push(await generatePlugins(count));
    const { NODE_OPTIONS: _ignored, ...env } = process.env;
    const { stdout } = await promisify(execFile)(process.execPath, [join(here, 'load-child.mjs'), ...dirs], {
      env,
      timeout: 120_000,
    });
    const timed = JSON.parse(stdout.trim()) as { loadMs: number; connectors: number; problems: number }[];
    const out: LoadRun[] = [];
    for (const [i, t] of timed.entries())
      out.push({ ...t, manifestsMs: await manifestsOnly(dirs[i]!, count), importsMs: Number.NaN });
    return out;
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
