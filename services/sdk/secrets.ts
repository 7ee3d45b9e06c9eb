/**
 * Which environment variables of the Sluice process may be read as secrets: one rule for secret references
 * (`{"secretRef": "env:NAME"}` options) and for connector options that name a variable (the Pulsar source's
 * `authTokenEnv`). `SLUICE_SECRET_ENV` lists them; Sluice's own settings never qualify, whatever it lists, so
 * that whoever may create a group cannot send SLUICE_AUTH_TOKENS (say) to a host of theirs.
 */

/** The setting that lists the variables secrets may be read from. */
export const SECRET_ENV_SETTING = 'SLUICE_SECRET_ENV';

/** Its default: every variable named `SLUICE_SECRET_…` (but the two settings of that name below). */
export const DEFAULT_SECRET_ENV = 'SLUICE_SECRET_*';

/** Sluice settings named SLUICE_SECRET_…; every other setting is a SLUICE_* name outside SLUICE_SECRET_*. */
const SETTINGS_NAMED_SECRET = new Set(['SLUICE_SECRET_KEY', 'SLUICE_SECRET_ENV']);

/** A variable name, as a shell or a process environment spells it. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * True for a variable name that is Sluice's own: a setting (SLUICE_AUTH_TOKENS, SLUICE_SECRET_KEY,
 * SLUICE_SECRET_ENV, …), a plugin setting (SLUICE_PLUGIN_*), or any other SLUICE_* name outside SLUICE_SECRET_*.
 * No secret is ever read from one.
 */
export function isSluiceSettingName(name: string): boolean {
  return name.startsWith('SLUICE_') && (!name.startsWith('SLUICE_SECRET_') || SETTINGS_NAMED_SECRET.has(name));
}

/** SLUICE_SECRET_ENV read: its entries (`NAME`, `PREFIX*`), or what is wrong with it ("expected …, got …"). */
export type SecretEnvSetting =
  { readonly ok: true; readonly entries: readonly string[] } | { readonly ok: false; readonly problem: string };

const EXPECTED_ENTRIES = 'variable names or prefixes ending with * (e.g. SLUICE_SECRET_*,PG_PASSWORD), or none';

/**
 * Reads a SLUICE_SECRET_ENV value: `NAME` or `PREFIX*` entries, comma-separated; `none`: no variable at all.
 * An entry naming a Sluice setting, a bare `*` or an empty list is a problem (start-up refuses it).
 */
export function parseSecretEnv(raw: string): SecretEnvSetting {
  if (raw.trim() === 'none') return { ok: true, entries: [] };
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return { ok: false, problem: `expected ${EXPECTED_ENTRIES}, got ${JSON.stringify(raw)}` };
  for (const e of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(e))
      return { ok: false, problem: `expected ${EXPECTED_ENTRIES}, got ${JSON.stringify(e)}` };
    if (!e.endsWith('*') && isSluiceSettingName(e))
      return {
        ok: false,
        problem: `expected names of variables that are not Sluice settings (SLUICE_* names other than SLUICE_SECRET_*), got ${JSON.stringify(e)}`,
      };
  }
  return { ok: true, entries };
}

/**
 * The SLUICE_SECRET_ENV entries in force in `env` (default: this process's environment): the setting's, its
 * default when unset or empty, and none when it is malformed (start-up refuses such a value; should one be
 * there anyway, nothing is allowed).
 */
export function secretEnvEntries(env: NodeJS.ProcessEnv = process.env): readonly string[] {
  const read = parseSecretEnv(env[SECRET_ENV_SETTING] || DEFAULT_SECRET_ENV);
  return read.ok ? read.entries : [];
}

/**
 * True when the environment variable `name` may be read as a secret: a variable name that an entry of
 * SLUICE_SECRET_ENV in `env` allows (`NAME` itself, or a `PREFIX*` it starts with), and never a Sluice setting
 * (see isSluiceSettingName). Whether the variable is set is not asked. A plugin that reads a variable an option
 * names checks it with this, both when validating the options and again before reading it (the setting may
 * have changed since).
 */
export function isSecretEnvAllowed(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!VARIABLE_NAME.test(name) || isSluiceSettingName(name)) return false;
  return secretEnvEntries(env).some((e) => (e.endsWith('*') ? name.startsWith(e.slice(0, -1)) : name === e));
}

/**
 * What SLUICE_SECRET_ENV in `env` allows, as a phrase for "expected …" in errors: the setting and its entries,
 * never the value of any variable.
 */
export function describeSecretEnv(env: NodeJS.ProcessEnv = process.env): string {
  const entries = secretEnvEntries(env);
  return entries.length > 0
    ? `a variable SLUICE_SECRET_ENV allows (${entries.join(',')}; never a Sluice setting)`
    : 'no variable (SLUICE_SECRET_ENV is none)';
}
