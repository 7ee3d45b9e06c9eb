/**
 * The connector conformance suite: runs against every connector plugin found (bundled, the test
 * fixtures, and every folder in SLUICE_PLUGIN_PATH, so third-party plugins are held to the same rules).
 * Data-free checks run for all; the data checks run where a harness says how to seed and read back
 * data (test/conformance/harnesses/<id>.ts, or `conformance.js` in a plugin's folder).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { Boundaries, BoundaryType, ConnectorPlugin, JsonSchema, Options, Row, WindowRef } from 'sluice/sdk';
import { Catalog } from '../services/catalog/domain/catalog.js';
import { silentLogger } from '../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../services/host/loader.js';
import { applyDefaults } from '../services/sdk/schema.js';
import type { ConformanceHarness, ConformanceRecord } from './conformance/harness.js';
import { gate } from './helpers/integration.js';

const test = anyTest as TestFn<unknown>;
const GOOD_FIXTURES = fileURLToPath(new URL('./fixtures/plugins/good/', import.meta.url));
const HARNESSES = fileURLToPath(new URL('./conformance/harnesses/', import.meta.url));
const READ_TIMEOUT_MS = 30_000;

const plugins = await loadPlugins({
  bundledDir: BUNDLED_PLUGINS_DIR,
  extraDirs: [GOOD_FIXTURES, ...(process.env.SLUICE_PLUGIN_PATH ?? '').split(delimiter).filter(Boolean)],
});
const runner = new HookRunner({ timeoutMs: READ_TIMEOUT_MS });
const catalog = new Catalog(plugins, runner);

async function findHarness(loaded: LoadedPlugin<ConnectorPlugin>): Promise<ConformanceHarness | undefined> {
  const candidates = [join(HARNESSES, `${loaded.id}.ts`), join(loaded.dir, 'conformance.js')];
  for (const file of candidates) {
    if (existsSync(file)) return ((await import(pathToFileURL(file).href)) as { default: ConformanceHarness }).default;
  }
  return undefined;
}

/** Options built from the schema alone: defaults, else the first example; undefined if a required option has neither. */
function synthesize(schema: JsonSchema | undefined): Options | undefined {
  const out: Record<string, unknown> = {};
  for (const name of schema?.required ?? []) {
    const p = schema?.properties?.[name];
    const value = p?.default ?? p?.examples?.[0];
    if (value === undefined) return undefined;
    out[name] = value;
  }
  return out;
}

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
/** 40 records one second apart, with two sharing a timestamp at a window edge. */
const RECORDS: readonly ConformanceRecord[] = Array.from({ length: 40 }, (_, i) => ({
  id: i + 1,
  ts: T0 + (i === 25 ? 24 : i) * 1000,
  name: `record-${i + 1} ünïcødé, "quoted"`,
}));
const inWindow = (from: number, to: number) => RECORDS.filter((r) => r.ts >= from && r.ts < to).map((r) => r.id);

async function readAll(
  loaded: LoadedPlugin<ConnectorPlugin>,
  options: Options,
  boundaries: Boundaries,
): Promise<Row[]> {
  const bounded = await catalog.resolveBoundaries(loaded.id, options, boundaries);
  const reader = await runner.call(loaded, 'openReader', { options: bounded.boundedOptions, boundaries });
  const rows: Row[] = [];
  const drain = (async () => {
    for await (const batch of reader.batches()) rows.push(...batch);
  })();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      drain,
      new Promise(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`reader did not stop within ${READ_TIMEOUT_MS} ms (read ${rows.length} rows)`)),
            READ_TIMEOUT_MS,
          )),
      ),
    ]);
  } finally {
    clearTimeout(timer);
    await reader.close();
  }
  return rows;
}

function window(boundaries: Boundaries, jobId: string): WindowRef {
  return { groupId: 'conformance', streamId: 's1', jobId, boundaries };
}

async function write(
  loaded: LoadedPlugin<ConnectorPlugin>,
  options: Options,
  w: WindowRef,
  rows: readonly ConformanceRecord[],
  end: 'commit' | 'abort',
): Promise<void> {
  const writer = await runner.call(loaded, 'openWriter', { options, window: w });
  for (let i = 0; i < rows.length; i += 7) await writer.write(rows.slice(i, i + 7).map((r) => ({ ...r })));
  if (end === 'commit') await writer.commit();
  else await writer.abort(new Error('conformance: abort'));
}

// AVA wants every test declared synchronously: find the harnesses and probe their services first.
const subjects = await Promise.all(
  [...plugins.connectors.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(async (loaded) => {
      const harness = await findHarness(loaded);
      const status = harness && (harness.source || harness.sink) ? await harness.available() : undefined;
      return { loaded, harness, status };
    }),
);

for (const { loaded, harness, status } of subjects) {
  const id = loaded.id;
  const p = loaded.plugin;

  test(`${id}: every option of every role is documented`, (t) => {
    for (const [role, schema] of [
      ['source', p.sourceOptions],
      ['sink', p.sinkOptions],
    ] as const) {
      if (!p.roles.includes(role)) continue;
      for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
        t.true(
          typeof prop.description === 'string' && prop.description.trim().length > 0,
          `${role} option '${name}' has a description`,
        );
      }
    }
  });

  if (p.roles.includes('source')) {
    const declared = p.boundaryTypes ?? [];
    const sample = harness?.sampleSourceOptions ?? synthesize(p.sourceOptions);
    const samples: Partial<Record<BoundaryType, Boundaries>> = {
      TIME: { boundaryType: 'TIME', lowerBound: String(T0), upperBound: String(T0 + 60_000) },
      ...harness?.sampleBoundaries,
    };
    if (sample === undefined) {
      test.skip(`${id}: fillInBoundaries is pure and deterministic (no sample options: give defaults or examples, or a harness)`, () => {});
    } else {
      for (const type of declared) {
        const b = samples[type];
        if (!b) {
          test.skip(`${id}: fillInBoundaries of a ${type} window is pure and deterministic (no sample ${type} window: ${type} positions are connector-defined; give sampleBoundaries in a harness)`, () => {});
          continue;
        }
        const fill = p.fillInBoundaries?.bind(p);
        if (!fill) {
          test(`${id}: without fillInBoundaries, a ${type} window's bounded options are the options given`, async (t) => {
            const resolved = await catalog.resolveBoundaries(id, structuredClone(sample), b);
            t.deepEqual(resolved.boundedOptions, applyDefaults(p.sourceOptions ?? {}, sample));
          });
          continue;
        }
        test(`${id}: fillInBoundaries of a ${type} window is pure and deterministic`, async (t) => {
          const first = await catalog.resolveBoundaries(id, structuredClone(sample), b);
          const second = await catalog.resolveBoundaries(id, structuredClone(sample), b);
          t.true(isDeepStrictEqual(first.boundedOptions, second.boundedOptions), 'same input, same output');
          t.deepEqual(
            JSON.parse(JSON.stringify(first.boundedOptions)),
            first.boundedOptions,
            'bounded options survive a JSON round trip unchanged (no Date, BigInt, undefined or NaN)',
          );
          // The host hands hooks a frozen copy; called directly with a plain one, the plugin itself must not
          // change its input either.
          const input = {
            options: p.sourceOptions ? applyDefaults(p.sourceOptions, sample) : structuredClone(sample),
            boundaries: { ...b },
          };
          const before = structuredClone(input);
          const ctx = { signal: new AbortController().signal, logger: silentLogger, pluginId: id, settings: {} };
          const direct = await fill(input, ctx);
          t.deepEqual(input, before, 'the plugin does not change the options or boundaries it is given');
          t.deepEqual(direct, first.boundedOptions, 'called directly, the plugin returns what the host returned');
        });
      }
      const undeclared = (['TIME', 'OFFSET'] as const).filter((type) => !declared.includes(type));
      for (const type of undeclared) {
        test(`${id}: a ${type} window, which it does not declare, is refused before it runs`, async (t) => {
          const err = await t.throwsAsync(
            catalog.resolveBoundaries(id, sample, { boundaryType: type, lowerBound: '1', upperBound: '2' }),
          );
          t.is((err as unknown as { code: string }).code, 'INVALID_ARGUMENT');
          t.is((err as unknown as { details: { field: string } }).details.field, 'boundaries.boundary_type');
        });
      }
    }
  }

  if (!harness || !status) continue;
  const data = gate(test, status);
  data.after.always(() => harness.cleanup());

  if (harness.source && p.roles.includes('source')) {
    const source = harness.source;
    for (const type of p.boundaryTypes ?? []) {
      const title = `${id}: the reader yields exactly the records of a ${type} window, once each, and stops`;
      const unsupported = harness.unsupportedWindows?.[type];
      if (unsupported !== undefined) {
        test.skip(`${title} (not run here: ${unsupported})`, () => {});
        continue;
      }
      data.serial(title, async (t: ExecutionContext) => {
        const seeded = await source.seed(RECORDS);
        const from = T0 + 10_000;
        const to = T0 + 24_000; // two records sit exactly on this edge: both belong to the next window
        const b = await seeded.boundaries(type, from, to);
        const rows = await readAll(loaded, seeded.options, b);
        const ids = rows.map((r) => source.idOf(r));
        t.deepEqual(
          [...ids].sort((x, y) => x - y),
          inWindow(from, to),
        );
        t.is(new Set(ids).size, ids.length, 'no record twice');
        const next = await seeded.boundaries(type, to, T0 + 40_000);
        t.deepEqual(
          (await readAll(loaded, seeded.options, next)).map((r) => source.idOf(r)).sort((x, y) => x - y),
          inWindow(to, T0 + 40_000),
          'the next window starts where this one stopped',
        );
        const empty = await seeded.boundaries(type, T0 + 100_000, T0 + 200_000);
        t.deepEqual(await readAll(loaded, seeded.options, empty), [], 'a window with no record yields none and ends');
      });
    }
  }

  if (harness.sink && p.roles.includes('sink')) {
    const sink = harness.sink;
    const w = (lower: number, jobId: string) =>
      window({ boundaryType: 'TIME', lowerBound: String(lower), upperBound: String(lower + 60_000) }, jobId);
    data.serial(`${id}: an aborted writer leaves nothing`, async (t: ExecutionContext) => {
      const options = await sink.options();
      const win = w(T0, 'job-abort');
      await write(loaded, options, win, RECORDS.slice(0, 10), 'abort');
      t.deepEqual(await sink.readBack(options, win), []);
    });
    data.serial(
      `${id}: a committed window holds its rows; a committed re-run replaces them, other windows untouched`,
      async (t: ExecutionContext) => {
        const options = await sink.options();
        const first = w(T0, 'job-1');
        const other = w(T0 + 60_000, 'job-2');
        await write(loaded, options, first, RECORDS.slice(0, 20), 'commit');
        await write(loaded, options, other, RECORDS.slice(30, 35), 'commit');
        t.deepEqual(await sink.readBack(options, first), RECORDS.slice(0, 20));
        await write(loaded, options, w(T0, 'job-1-rerun'), RECORDS.slice(5, 12), 'commit');
        t.deepEqual(await sink.readBack(options, first), RECORDS.slice(5, 12), 're-run replaced the window');
        t.deepEqual(await sink.readBack(options, other), RECORDS.slice(30, 35), 'the other window is untouched');
      },
    );
  }
}
