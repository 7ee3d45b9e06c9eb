import { readFile } from 'node:fs/promises';
import {
  checkSchema,
  describeValue,
  validateAgainstSchema,
  type Availability,
  type JsonSchema,
  type PluginManifest,
} from 'sluice/sdk';
import { type PluginProblem, problem } from './problems.js';

/** A setting's name in plugin.json: a camelCase identifier, so that its variable name is unambiguous. */
export const SETTING_NAME = /^[a-z][a-zA-Z0-9]*$/;

/** Where plugin settings come from besides the environment. */
export interface SettingsSources {
  /** The process environment (SLUICE_PLUGIN_<ID>_<SETTING>). */
  readonly env: NodeJS.ProcessEnv;
  /** A JSON file `{ "<plugin id>": { "<setting>": value } }` (SLUICE_PLUGIN_SETTINGS_FILE); the environment wins. */
  readonly file?: string;
}

/** One plugin's settings after checking. */
export interface PluginSettings {
  /** The values, typed by the schema (defaults filled in); handed to every hook as `ctx.settings`. */
  readonly values: Readonly<Record<string, unknown>>;
  /** Unavailable (with the reason) while a required setting is missing; the plugin still loads. */
  readonly availability: Availability;
  /** Names of the settings marked `writeOnly`: never returned, never logged. */
  readonly secrets: readonly string[];
}

/** `SLUICE_PLUGIN_<ID>_<SETTING>`: upper snake case, `-` and `.` in the id become `_` (airflow, url → SLUICE_PLUGIN_AIRFLOW_URL). */
export function settingVariable(pluginId: string, setting: string): string {
  const id = pluginId.replace(/[-.]/g, '_').toUpperCase();
  const name = setting.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return `SLUICE_PLUGIN_${id}_${name}`;
}

/** Problems of a manifest's `settings` schema: an object schema whose properties have camelCase names. */
export function checkSettingsSchema(value: unknown, where: string, id?: string): PluginProblem[] {
  const problems = checkSchema(value, 'settings').map((p) =>
    problem('MANIFEST_INVALID', where, 'a JSON Schema of the settings', p, id),
  );
  if (problems.length > 0) return problems;
  const s = value as JsonSchema;
  if (s.type !== 'object' || !s.properties)
    return [
      problem('MANIFEST_INVALID', where, 'a JSON Schema with type "object" and properties', describeValue(s.type), id),
    ];
  for (const name of Object.keys(s.properties)) {
    if (!SETTING_NAME.test(name))
      problems.push(
        problem('MANIFEST_INVALID', `${where}.${name}`, `a setting name matching ${SETTING_NAME}`, `'${name}'`, id),
      );
  }
  return problems;
}

/** Reads the optional settings file once; a file that cannot be used is a problem of every plugin it names. */
export async function readSettingsFile(
  file: string | undefined,
): Promise<{ values: Record<string, Record<string, unknown>>; problem?: PluginProblem }> {
  if (!file) return { values: {} };
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    return {
      values: {},
      problem: problem('SETTINGS_INVALID', file, 'a readable JSON file of plugin settings', (err as Error).message),
    };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    return {
      values: {},
      problem: problem('SETTINGS_INVALID', file, 'a JSON object keyed by plugin id', describeValue(data)),
    };
  return { values: data as Record<string, Record<string, unknown>> };
}

/** An environment string as the schema's type wants it; undefined when it cannot be one (validation then names it). */
function coerce(raw: string, schema: JsonSchema): unknown {
  switch (schema.type) {
    case 'integer':
    case 'number':
      return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : raw;
    case 'object':
    case 'array':
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

/**
 * Reads one plugin's settings from the environment and the file, checks them against its schema and
 * returns them. A missing required setting makes the plugin unavailable (it still loads); a present but
 * invalid one is a problem (SETTINGS_INVALID) naming the variable, what was expected and what came,
 * never the value of a secret.
 */
export function resolveSettings(
  manifest: PluginManifest,
  where: string,
  env: NodeJS.ProcessEnv,
  fileValues: Readonly<Record<string, unknown>> | undefined,
): { settings: PluginSettings } | { problems: PluginProblem[] } {
  const schema = manifest.settings;
  if (!schema?.properties) return { settings: { values: {}, availability: { available: true }, secrets: [] } };
  const values: Record<string, unknown> = {};
  const secrets: string[] = [];
  const problems: PluginProblem[] = [];
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (prop.writeOnly) secrets.push(name);
    const variable = settingVariable(manifest.id, name);
    const raw = env[variable];
    const value = raw !== undefined && raw !== '' ? coerce(raw, prop) : fileValues?.[name];
    if (value === undefined) {
      if (prop.default !== undefined) values[name] = prop.default;
      continue;
    }
    const errors = validateAgainstSchema(prop, value, name);
    for (const e of errors) {
      const found = prop.writeOnly ? 'a value (not shown: the setting is secret)' : e.received;
      problems.push(
        problem('SETTINGS_INVALID', `${where}#settings.${name}`, `${variable}: ${e.expected}`, found, manifest.id),
      );
    }
    values[name] = value;
  }
  if (problems.length > 0) return { problems };
  const missing = (schema.required ?? []).filter((name) => values[name] === undefined);
  const availability =
    missing.length === 0
      ? { available: true }
      : {
          available: false,
          reason: `missing required setting${missing.length > 1 ? 's' : ''} ${missing
            .map((n) => `${settingVariable(manifest.id, n)} (${n})`)
            .join(', ')}`,
        };
  return { settings: { values: Object.freeze(values), availability, secrets } };
}

/** Pairs of plugins whose settings would read the same variable: each such name is a problem of the later plugin. */
export function settingClashes(
  manifests: readonly { manifest: PluginManifest; where: string }[],
): Map<string, PluginProblem[]> {
  const owner = new Map<string, string>();
  const out = new Map<string, PluginProblem[]>();
  for (const { manifest, where } of manifests) {
    for (const name of Object.keys(manifest.settings?.properties ?? {})) {
      const variable = settingVariable(manifest.id, name);
      const first = owner.get(variable);
      if (first !== undefined && first !== manifest.id) {
        const list = out.get(manifest.id) ?? [];
        list.push(
          problem(
            'SETTINGS_NAME_CLASH',
            `${where}#settings.${name}`,
            `a setting variable no other plugin reads`,
            `${variable}, also read by plugin '${first}'`,
            manifest.id,
          ),
        );
        out.set(manifest.id, list);
      } else owner.set(variable, manifest.id);
    }
  }
  return out;
}
