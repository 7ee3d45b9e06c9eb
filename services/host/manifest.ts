import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PLUGIN_API_VERSION, describeValue, type JsonSchema, type PluginManifest } from 'sluice/sdk';
import { type PluginProblem, problem } from './problems.js';
import { checkSettingsSchema } from './settings.js';

export const MANIFEST_FILE = 'plugin.json';
const ID_PATTERN = /^[a-z][a-z0-9]*([.-][a-z0-9]+)*$/;
const VERSION_PATTERN = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/;
const FIELDS = ['id', 'kind', 'apiVersion', 'version', 'description', 'main', 'settings'] as const;

export type ManifestResult =
  | { readonly ok: true; readonly manifest: PluginManifest & { readonly main: string } }
  | { readonly ok: false; readonly problems: readonly PluginProblem[]; readonly pluginId?: string };

/**
 * Reads and checks a plugin folder's manifest without touching any of its code. Reports every
 * problem of the manifest at once.
 */
export async function readManifest(dir: string): Promise<ManifestResult> {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return {
        ok: false,
        problems: [problem('MANIFEST_MISSING', dir, `a ${MANIFEST_FILE} file in the plugin folder`, 'no such file')],
      };
    }
    return {
      ok: false,
      problems: [
        problem('MANIFEST_UNREADABLE', file, 'a readable file', `${code ?? 'error'}: ${(err as Error).message}`),
      ],
    };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [problem('MANIFEST_INVALID_JSON', file, 'valid JSON', (err as Error).message)] };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, problems: [problem('MANIFEST_INVALID', file, 'a JSON object', describeValue(data))] };
  }
  const m = data as Record<string, unknown>;
  const id = typeof m.id === 'string' && ID_PATTERN.test(m.id) ? m.id : undefined;
  const problems: PluginProblem[] = [];
  const bad = (field: string, expected: string) =>
    problems.push(problem('MANIFEST_INVALID', `${file}#${field}`, expected, describeValue(m[field]), id));

  if (!id) bad('id', `a string matching ${ID_PATTERN}`);
  if (m.kind !== 'engine' && m.kind !== 'connector') bad('kind', '"engine" or "connector"');
  if (typeof m.version !== 'string' || !VERSION_PATTERN.test(m.version))
    bad('version', 'a semantic version such as "1.0.0"');
  if (typeof m.description !== 'string' || m.description.trim() === '') bad('description', 'a non-empty string');
  if (
    m.main !== undefined &&
    (typeof m.main !== 'string' || m.main === '' || m.main.startsWith('/') || m.main.split(/[\\/]/).includes('..'))
  ) {
    bad('main', 'a relative path inside the plugin folder');
  }
  if (typeof m.apiVersion !== 'number' || !Number.isInteger(m.apiVersion)) {
    bad('apiVersion', `the integer ${PLUGIN_API_VERSION}`);
  } else if (m.apiVersion !== PLUGIN_API_VERSION) {
    problems.push(
      problem(
        'API_VERSION_UNSUPPORTED',
        `${file}#apiVersion`,
        `apiVersion ${PLUGIN_API_VERSION}`,
        String(m.apiVersion),
        id,
      ),
    );
  }
  if (m.settings !== undefined) problems.push(...checkSettingsSchema(m.settings, `${file}#settings`, id));
  for (const key of Object.keys(m)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      problems.push(
        problem(
          'MANIFEST_INVALID',
          `${file}#${key}`,
          `only the fields ${FIELDS.join(', ')}`,
          `unknown field '${key}'`,
          id,
        ),
      );
    }
  }
  if (problems.length > 0) return { ok: false, problems, ...(id ? { pluginId: id } : {}) };
  return {
    ok: true,
    manifest: {
      id: m.id as string,
      kind: m.kind as 'engine' | 'connector',
      apiVersion: m.apiVersion as number,
      version: m.version as string,
      description: m.description as string,
      main: (m.main as string | undefined) ?? 'index.js',
      ...(m.settings !== undefined ? { settings: m.settings as JsonSchema } : {}),
    },
  };
}
