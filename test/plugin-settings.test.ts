import test, { type ExecutionContext } from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../services/catalog/domain/catalog.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { loadPlugins } from '../services/host/loader.js';
import { settingVariable } from '../services/host/settings.js';

/** Writes an engine plugin folder whose start hook reports the settings it was handed. */
async function enginePlugin(root: string, id: string, settings: unknown): Promise<void> {
  const dir = join(root, id);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'plugin.json'),
    JSON.stringify({ id, kind: 'engine', apiVersion: 1, version: '1.0.0', description: `engine ${id}`, settings }),
  );
  await writeFile(
    join(dir, 'index.js'),
    `export default {
  accept: (type) => type === '${id}',
  register() {}, unregister() {}, update() {},
  start(ctx) { globalThis.seenSettings = { ...(globalThis.seenSettings ?? {}), ['${id}']: ctx.settings }; },
};\n`,
  );
}

const CLOCK_SETTINGS = {
  type: 'object',
  properties: {
    url: { type: 'string', pattern: '^https?://', description: 'where the clock runs' },
    apiToken: { type: 'string', writeOnly: true, minLength: 12, description: 'its token' },
    tickMs: { type: 'integer', minimum: 100, default: 1000 },
  },
  required: ['url', 'apiToken'],
};

async function folder(t: ExecutionContext): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-settings-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

test('variable names: upper snake case, "-" and "." in ids become "_"', (t) => {
  t.is(settingVariable('airflow', 'url'), 'SLUICE_PLUGIN_AIRFLOW_URL');
  t.is(settingVariable('ext-clock', 'apiToken'), 'SLUICE_PLUGIN_EXT_CLOCK_API_TOKEN');
  t.is(settingVariable('acme.dolphin', 'tickMs'), 'SLUICE_PLUGIN_ACME_DOLPHIN_TICK_MS');
});

test('a plugin missing a required setting loads and is listed unavailable, naming the variables', async (t) => {
  const root = await folder(t);
  await enginePlugin(root, 'ext-clock', CLOCK_SETTINGS);
  const set = await loadPlugins({ extraDirs: [root], settings: { env: {} } });
  t.deepEqual(set.problems, []);
  const loaded = set.engines.get('ext-clock');
  t.truthy(loaded, 'it still loads');
  t.false(loaded!.settings!.availability.available);
  t.is(
    loaded!.settings!.availability.reason,
    'missing required settings SLUICE_PLUGIN_EXT_CLOCK_URL (url), SLUICE_PLUGIN_EXT_CLOCK_API_TOKEN (apiToken)',
  );
  const catalog = new Catalog(set, new HookRunner());
  const listed = (await catalog.listEngines({ pageSize: 10, pageToken: '' })).items.find((e) => e.id === 'ext-clock');
  t.false(listed!.availability.available);
  t.regex(listed!.availability.reason!, /SLUICE_PLUGIN_EXT_CLOCK_URL/);
  t.deepEqual(listed!.settingsSchema, CLOCK_SETTINGS as never, 'the schema is listed, never values');
});

test('settings come from the environment (typed, defaults filled) or the file, and reach every hook', async (t) => {
  const root = await folder(t);
  await enginePlugin(root, 'ext-clock', CLOCK_SETTINGS);
  const file = join(root, 'settings.json');
  await writeFile(file, JSON.stringify({ 'ext-clock': { url: 'http://from-file', apiToken: 'file-token-123456' } }));
  const set = await loadPlugins({
    extraDirs: [root],
    settings: { env: { SLUICE_PLUGIN_EXT_CLOCK_URL: 'https://clock.example:8443' }, file },
  });
  t.deepEqual(set.problems, []);
  const loaded = set.engines.get('ext-clock')!;
  t.true(loaded.settings!.availability.available);
  t.deepEqual(loaded.settings!.values, {
    url: 'https://clock.example:8443',
    apiToken: 'file-token-123456',
    tickMs: 1000,
  });
  t.deepEqual(loaded.settings!.secrets, ['apiToken']);
  await new HookRunner().call(loaded, 'start', undefined, { context: {} });
  t.deepEqual((globalThis as { seenSettings?: Record<string, unknown> }).seenSettings?.['ext-clock'], {
    url: 'https://clock.example:8443',
    apiToken: 'file-token-123456',
    tickMs: 1000,
  });
});

test('a setting present but invalid is a plugin problem naming the variable; a secret value is never shown', async (t) => {
  const root = await folder(t);
  await enginePlugin(root, 'ext-clock', CLOCK_SETTINGS);
  const set = await loadPlugins({
    extraDirs: [root],
    settings: {
      env: {
        SLUICE_PLUGIN_EXT_CLOCK_URL: 'ftp://nope',
        SLUICE_PLUGIN_EXT_CLOCK_API_TOKEN: 'hunter2',
        SLUICE_PLUGIN_EXT_CLOCK_TICK_MS: 'soon',
      },
    },
  });
  t.false(set.engines.has('ext-clock'));
  const messages = set.problems.map((p) => p.message);
  t.is(set.problems.length, 3);
  t.true(set.problems.every((p) => p.code === 'SETTINGS_INVALID' && p.pluginId === 'ext-clock'));
  t.true(messages.some((m) => m.includes('SLUICE_PLUGIN_EXT_CLOCK_URL') && m.includes('"ftp://nope"')));
  t.true(messages.some((m) => m.includes('SLUICE_PLUGIN_EXT_CLOCK_TICK_MS') && m.includes('"soon"')));
  t.true(messages.some((m) => m.includes('SLUICE_PLUGIN_EXT_CLOCK_API_TOKEN') && m.includes('not shown')));
  t.false(messages.join('\n').includes('hunter2'), 'the secret never appears');
});

test('two plugins whose settings would share a variable: the later one is a problem', async (t) => {
  const root = await folder(t);
  await enginePlugin(root, 'a', { type: 'object', properties: { bUrl: { type: 'string' } } });
  await enginePlugin(root, 'a-b', { type: 'object', properties: { url: { type: 'string' } } });
  const set = await loadPlugins({ extraDirs: [root], settings: { env: {} } });
  t.true(set.engines.has('a'));
  t.false(set.engines.has('a-b'));
  t.is(set.problems.length, 1);
  t.is(set.problems[0]!.code, 'SETTINGS_NAME_CLASH');
  t.regex(set.problems[0]!.message, /SLUICE_PLUGIN_A_B_URL, also read by plugin 'a'/);
});

test('a settings schema that is not an object of camelCase settings is a manifest problem', async (t) => {
  const root = await folder(t);
  await enginePlugin(root, 'bad-settings', { type: 'object', properties: { 'base-url': { type: 'string' } } });
  await enginePlugin(root, 'worse-settings', { type: 'string' });
  const set = await loadPlugins({ extraDirs: [root], settings: { env: {} } });
  t.deepEqual(
    set.problems.map((p) => [p.pluginId, p.code]),
    [
      ['bad-settings', 'MANIFEST_INVALID'],
      ['worse-settings', 'MANIFEST_INVALID'],
    ],
  );
  t.regex(set.problems[0]!.message, /base-url/);
});
