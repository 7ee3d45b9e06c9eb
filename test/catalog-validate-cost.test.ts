/**
 * Validating a connector's options is paid by every submitted window (resolveBoundaries validates them first), so
 * it must not compile the options schema again each time: one compile is about 13 ms of CPU, a cached check well
 * under one.
 */
import anyTest, { type TestFn } from 'ava';
import { Catalog } from '../services/catalog/domain/catalog.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { loadPlugins } from '../services/host/loader.js';

const test = anyTest as TestFn<{ catalog: Catalog }>;
test.before(async (t) => {
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  t.context.catalog = new Catalog(plugins, new HookRunner({ timeoutMs: 10_000 }));
});

const CALLS = 200;

test('validating the same connector options again costs a cached check, not a schema compile', async (t) => {
  const { catalog } = t.context;
  const options = {
    url: 'postgres://u@127.0.0.1/db',
    table: 'src',
    keyColumn: 'id',
    timeColumn: 'ts',
    columns: ['id'],
  };
  t.deepEqual(await catalog.validateOptions('postgres', 'source', options), []);
  const started = performance.now();
  for (let i = 0; i < CALLS; i++) await catalog.validateOptions('postgres', 'source', { ...options, table: `t${i}` });
  const perCall = (performance.now() - started) / CALLS;
  // A compile per call took 13 ms here on a quiet machine; a cached check takes about 0.05 ms. 5 ms leaves room
  // for a loaded machine either way.
  t.true(perCall < 5, `${perCall.toFixed(2)} ms per validation`);
  // Still a real check: a bad option is reported, naming the field.
  const errors = await catalog.validateOptions('postgres', 'source', { ...options, table: 7 });
  t.true(
    errors.some((e) => e.path === 'options.table'),
    JSON.stringify(errors),
  );
});
