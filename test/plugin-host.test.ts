import anyTest, { type TestFn } from 'ava';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { type PluginSet, loadPlugins } from '../services/host/loader.js';
import { PROBLEM_CODES } from '../services/host/problems.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
const BROKEN = join(FIXTURES, 'broken');
const GOOD = join(FIXTURES, 'good');

declare global {
  var __sluiceFixtureImports: string[] | undefined;
}

interface Context {
  set: PluginSet;
  /** "<folder>:<code>" for every problem, folder relative to the broken fixtures. */
  problems: string[];
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  globalThis.__sluiceFixtureImports = [];
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [GOOD, BROKEN] });
  const problems = set.problems.map((p) => `${relative(BROKEN, p.path).split(/[/#]/)[0]}:${p.code}`).sort();
  t.context = { set, problems };
});

test('every problem of every broken plugin is reported at once, by folder and code', (t) => {
  t.deepEqual(t.context.problems, [
    'bad-api-version:API_VERSION_UNSUPPORTED',
    'bad-schema:EXPORT_INVALID',
    'bad-schema:EXPORT_INVALID',
    'duplicate-id:DUPLICATE_ID',
    'entry-missing:ENTRY_MISSING',
    'export-not-object:EXPORT_INVALID',
    'hook-not-function:HOOK_NOT_FUNCTION',
    'import-syntax-error:IMPORT_FAILED',
    'import-throws:IMPORT_FAILED',
    'invalid-json:MANIFEST_INVALID_JSON',
    'kind-mismatch:KIND_MISMATCH',
    'missing-fields:MANIFEST_INVALID',
    'missing-fields:MANIFEST_INVALID',
    'missing-fields:MANIFEST_INVALID',
    'missing-fields:MANIFEST_INVALID',
    'missing-hooks:EXPORT_INVALID',
    'missing-hooks:EXPORT_INVALID',
    'missing-hooks:EXPORT_INVALID',
    'no-default-export:NO_DEFAULT_EXPORT',
    'no-manifest:MANIFEST_MISSING',
    'unknown-field:MANIFEST_INVALID',
    'unknown-hook:EXPORT_INVALID',
    'unknown-hook:UNKNOWN_HOOK',
    'unreadable-manifest:MANIFEST_UNREADABLE',
  ]);
  for (const p of t.context.set.problems) t.true((PROBLEM_CODES as readonly string[]).includes(p.code));
});

test('the good plugins load beside the broken ones, bundled and third-party alike', (t) => {
  const bundled = readdirSync(join(BUNDLED_PLUGINS_DIR, 'connectors')).filter((n) => !n.startsWith('_'));
  t.deepEqual([...t.context.set.connectors.keys()].sort(), [...bundled, 'faulty', 'plain-connector'].sort());
  t.deepEqual([...t.context.set.engines.keys()].sort(), ['airflow', 'builtin', 'dolphinscheduler', 'plain-engine']);
  t.is(t.context.set.connectors.get('datagen')!.dir, join(BUNDLED_PLUGINS_DIR, 'connectors', 'datagen'));
});

test('no code of a plugin with a bad manifest runs', (t) => {
  t.deepEqual(globalThis.__sluiceFixtureImports, []);
});

test('a manifest problem names the field, what was expected and what was found', (t) => {
  const missing = t.context.set.problems.filter((p) => p.path.includes('missing-fields'));
  t.deepEqual(missing.map((p) => p.path.split('#')[1]).sort(), ['apiVersion', 'description', 'kind', 'version']);
  const kind = missing.find((p) => p.path.endsWith('#kind'))!;
  t.is(kind.expected, '"engine" or "connector"');
  t.is(kind.found, 'nothing');
  t.is(kind.pluginId, 'missing-fields');
  const api = t.context.set.problems.find((p) => p.code === 'API_VERSION_UNSUPPORTED')!;
  t.is(api.found, '99');
  t.is(api.expected, 'apiVersion 1');
});

test('a duplicate id names both folders; the first found (bundled) wins', (t) => {
  const dup = t.context.set.problems.find((p) => p.code === 'DUPLICATE_ID')!;
  t.is(dup.path, join(BROKEN, 'duplicate-id'));
  t.true(dup.found.includes(join(BUNDLED_PLUGINS_DIR, 'connectors', 'datagen')));
  t.deepEqual(t.context.set.connectors.get('datagen')!.plugin.roles, ['source']);
});

test('an import failure points at the file and line', (t) => {
  const syntax = t.context.set.problems.find((p) => p.path.includes('import-syntax-error'))!;
  t.is(syntax.path, `${join(BROKEN, 'import-syntax-error', 'index.js')}:3`);
  t.regex(syntax.found, /^SyntaxError/);
  const thrown = t.context.set.problems.find((p) => p.path.includes('import-throws'))!;
  t.is(thrown.path, `${join(BROKEN, 'import-throws', 'index.js')}:2`);
  t.is(thrown.found, 'Error: cannot reach the license server');
});

test('hook problems name the hook', (t) => {
  const notFn = t.context.set.problems.find((p) => p.code === 'HOOK_NOT_FUNCTION')!;
  t.true(notFn.path.endsWith('index.js#register'));
  t.is(notFn.found, '"yes"');
  const unknown = t.context.set.problems.find((p) => p.code === 'UNKNOWN_HOOK')!;
  t.true(unknown.path.endsWith('#fillInBoundary'));
  const missing = t.context.set.problems
    .filter((p) => p.path.includes('missing-hooks'))
    .map((p) => p.path.split('#')[1])
    .sort();
  t.deepEqual(missing, ['register', 'unregister', 'update']);
});

test('a connector in the engines folder is a kind mismatch', async (t) => {
  const set = await loadPlugins({ bundledDir: join(FIXTURES, 'misplaced') });
  t.is(set.connectors.size, 0);
  t.deepEqual(
    set.problems.map((p) => [p.code, p.pluginId]),
    [['KIND_MISMATCH', 'a-connector']],
  );
});

test('a module that never finishes loading is left out after the import timeout', async (t) => {
  const started = Date.now();
  const set = await loadPlugins({ extraDirs: [join(FIXTURES, 'hanging')], importTimeoutMs: 300 });
  t.true(Date.now() - started < 5000);
  t.deepEqual(
    set.problems.map((p) => p.code),
    ['IMPORT_FAILED'],
  );
  t.regex(set.problems[0]!.found, /did not finish within 300 ms/);
});

test('a plugin path that does not exist is reported, not fatal', async (t) => {
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [join(FIXTURES, 'nowhere')] });
  t.true(set.connectors.has('datagen'));
  t.deepEqual(
    set.problems.map((p) => p.code),
    ['MANIFEST_MISSING'],
  );
});

test('a folder that is itself a plugin can be given directly', async (t) => {
  const set = await loadPlugins({ extraDirs: [join(GOOD, 'plain-engine')] });
  t.deepEqual([...set.engines.keys()], ['plain-engine']);
  t.deepEqual(set.problems, []);
});
