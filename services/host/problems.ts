/** Why a plugin was left out. Codes are stable; docs/plugins.md lists them. */
export const PROBLEM_CODES = [
  'MANIFEST_MISSING',
  'MANIFEST_UNREADABLE',
  'MANIFEST_INVALID_JSON',
  'MANIFEST_INVALID',
  'API_VERSION_UNSUPPORTED',
  'KIND_MISMATCH',
  'DUPLICATE_ID',
  'ENTRY_MISSING',
  'IMPORT_FAILED',
  'NO_DEFAULT_EXPORT',
  'EXPORT_INVALID',
  'HOOK_NOT_FUNCTION',
  'UNKNOWN_HOOK',
  'SETTINGS_INVALID',
  'SETTINGS_NAME_CLASH',
] as const;

export type ProblemCode = (typeof PROBLEM_CODES)[number];

export interface PluginProblem {
  /** The folder or file at fault (the manifest for manifest problems, the entry for import problems). */
  readonly path: string;
  readonly pluginId?: string;
  readonly code: ProblemCode;
  readonly expected: string;
  readonly found: string;
  readonly message: string;
}

export function problem(
  code: ProblemCode,
  path: string,
  expected: string,
  found: string,
  pluginId?: string,
): PluginProblem {
  const who = pluginId ? `plugin '${pluginId}' ` : '';
  return {
    code,
    path,
    expected,
    found,
    message: `${who}${path}: ${code}: expected ${expected}, found ${found}`,
    ...(pluginId ? { pluginId } : {}),
  };
}
