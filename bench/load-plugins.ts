import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPlugins } from '../services/host/loader.js';
import { now } from './stats.js';

export const PLUGIN_COUNT = 200;

const ENTRY = `export default {
  roles: ['source'],
  boundaryTypes: ['TIME'],
  sourceOptions: { type: 'object', properties: { topic: { type: 'string', description: 'x' } } },
  fillInBoundaries({ options, boundaries }) {
    return { ...options, lower: boundaries.lowerBound, upper: boundaries.upperBound };
  },
};
`;

const pluginId = (i: number) => `gen-${String(i).padStart(4, '0')}`;

/** Writes `count` minimal connector plugins into a fresh temp folder and returns it. */
export async function generatePlugins(count: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-bench-plugins-'));
  for (let i = 0; i < count; i++) {
    const id = pluginId(i);
    const dir = join(root, id);
    await mkdir(dir);
    const manifest = {
      id,
      kind: 'connector',
      apiVersion: 1,
      version: '1.0.0',
      description: `Generated connector ${id}`,
      main: 'index.js',
    };
    await writeFile(join(dir, 'plugin.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(dir, 'index.js'), ENTRY);
  }
  return root;
}

export interface LoadRun {
  /** Wall time of loadPlugins({ extraDirs: [dir] }). */
  readonly loadMs: number;
  /** Wall time of only reading and JSON.parse'ing the same manifests (the reference). */
  readonly manifestsMs: number;
  /** Wall time of only import()ing the entry modules of a second, identical folder (concurrently). */
  readonly importsMs: number;
  readonly connectors: number;
  readonly problems: number;
}

/** Reads and parses every manifest concurrently, as the loader's phase 1 does, but with no checks. */
async function readManifests(root: string, count: number): Promise<number> {
  const parsed = await Promise.all(
    Array.from(
      { length: count },
      async (_, i) => JSON.parse(await readFile(join(root, pluginId(i), 'plugin.json'), 'utf8')) as { id: string },
    ),
  );
  return parsed.length;
}

/** Wall time of only reading and parsing the manifests of a generated folder. */
export async function manifestsOnly(root: string, count: number): Promise<number> {
  const t0 = now();
  const read = await readManifests(root, count);
  if (read !== count) throw new Error(`read ${read} manifests, expected ${count}`);
  return now() - t0;
}

/** Imports every entry module concurrently, as the loader's phase 2 does, but with no checks. */
async function importEntries(root: string, count: number): Promise<number> {
  const mods = await Promise.all(
    Array.from(
      { length: count },
      async (_, i) => (await import(pathToFileURL(join(root, pluginId(i), 'index.js')).href)) as { default?: unknown },
    ),
  );
  return mods.filter((m) => m.default !== undefined).length;
}

/**
 * One run on a freshly generated folder: ESM caches modules by URL, so a new folder means every
 * entry module is really imported. The first run in the process is the cold one.
 */
export async function benchLoadPlugins(count = PLUGIN_COUNT): Promise<LoadRun> {
  const root = await generatePlugins(count);
  const twin = await generatePlugins(count);
  try {
    const t0 = now();
    const set = await loadPlugins({ extraDirs: [root] });
    const loadMs = now() - t0;

    const t1 = now();
    const read = await readManifests(root, count);
    const manifestsMs = now() - t1;
    if (read !== count) throw new Error(`read ${read} manifests, expected ${count}`);

    const t2 = now();
    const imported = await importEntries(twin, count);
    const importsMs = now() - t2;
    if (imported !== count) throw new Error(`imported ${imported} entry modules, expected ${count}`);

    return { loadMs, manifestsMs, importsMs, connectors: set.connectors.size, problems: set.problems.length };
  } finally {
    await rm(root, { recursive: true, force: true });
    await rm(twin, { recursive: true, force: true });
  }
}
