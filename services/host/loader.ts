import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CONNECTOR_FIELDS,
  CONNECTOR_HOOKS,
  ENGINE_FIELDS,
  ENGINE_HOOKS,
  ENGINE_REQUIRED_HOOKS,
  checkSchema,
  describeValue,
  type ConnectorPlugin,
  type EnginePlugin,
  type PluginManifest,
} from 'sluice/sdk';
import { MANIFEST_FILE, readManifest } from './manifest.js';
import { type PluginProblem, problem } from './problems.js';
import {
  type PluginSettings,
  type SettingsSources,
  readSettingsFile,
  resolveSettings,
  settingClashes,
} from './settings.js';

export type PluginKind = 'engine' | 'connector';

/** A plugin that passed every check, ready for the hook runner. */
export interface LoadedPlugin<P> {
  readonly id: string;
  readonly kind: PluginKind;
  readonly manifest: PluginManifest;
  /** The plugin folder. */
  readonly dir: string;
  /** The entry module that was imported. */
  readonly entry: string;
  readonly plugin: P;
  /** Its checked settings and whether it can run (a required setting missing: unavailable, with the reason). */
  readonly settings?: PluginSettings;
}

export interface PluginSet {
  readonly connectors: ReadonlyMap<string, LoadedPlugin<ConnectorPlugin>>;
  readonly engines: ReadonlyMap<string, LoadedPlugin<EnginePlugin>>;
  /** Every plugin left out, with every reason. */
  readonly problems: readonly PluginProblem[];
  /** The folders plugins were looked for in (absolute), to show problem paths relative to them. */
  readonly roots?: readonly string[];
}

export interface LoadOptions {
  /** The bundled plugins folder, holding engines/ and connectors/. */
  readonly bundledDir?: string;
  /** Extra folders (SLUICE_PLUGIN_PATH), scanned after the bundled ones, in order. */
  readonly extraDirs?: readonly string[];
  /** Where plugin settings are read (default: process.env, no file). */
  readonly settings?: SettingsSources;
  /** How long one entry module may take to import (default 10 s). */
  readonly importTimeoutMs?: number;
}

interface Candidate {
  readonly dir: string;
  /** The kind its folder implies (bundled engines/ or connectors/), if any. */
  readonly impliedKind?: PluginKind;
}

const KIND_FOLDERS: Record<string, PluginKind> = { engines: 'engine', connectors: 'connector' };

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const dirs = await Promise.all(
    // `.` and `_` folders are not plugins: hidden files, and code that bundled plugins share (e.g. _sql).
    names
      .filter((n) => !n.startsWith('.') && !n.startsWith('_') && n !== 'node_modules')
      .sort()
      .map(async (n) => ((await isDir(join(dir, n))) ? join(dir, n) : undefined)),
  );
  return dirs.filter((d): d is string => d !== undefined);
}

/**
 * Finds plugin folders under a root: the root itself when it holds a manifest; else each subfolder,
 * where `engines/` and `connectors/` without a manifest are grouping folders scanned one level down.
 */
async function discover(root: string, problems: PluginProblem[]): Promise<Candidate[]> {
  if (!(await isDir(root))) {
    problems.push(problem('MANIFEST_MISSING', root, 'a folder of plugins', 'no such folder'));
    return [];
  }
  if (existsSync(join(root, MANIFEST_FILE))) return [{ dir: root }];
  const out: Candidate[] = [];
  for (const dir of await subdirs(root)) {
    const implied = KIND_FOLDERS[basename(dir)];
    if (implied && !existsSync(join(dir, MANIFEST_FILE))) {
      for (const sub of await subdirs(dir)) out.push({ dir: sub, impliedKind: implied });
    } else {
      out.push({ dir });
    }
  }
  return out;
}

/**
 * The entry file to import. When `main` names a .js file that is absent but its .ts source sits beside
 * it, the source is used: that is the bundled plugins run from a checkout under a TypeScript loader
 * (tests, `npm run bench`); a built tree always has the .js file.
 */
function resolveEntry(dir: string, main: string): string | undefined {
  const file = resolve(dir, main);
  if (existsSync(file)) return file;
  if (file.endsWith('.js') && existsSync(`${file.slice(0, -3)}.ts`)) return `${file.slice(0, -3)}.ts`;
  return undefined;
}

/** `file:line` of the first stack frame inside the plugin folder, to point at the broken line. */
function locate(err: unknown, dir: string): string | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  const dirUrl = pathToFileURL(dir).href;
  for (const line of stack.split('\n')) {
    for (const prefix of [dirUrl, dir]) {
      const at = line.indexOf(prefix + (prefix === dir ? sep : '/'));
      if (at >= 0) {
        const m = /^(\S+?):(\d+)(?::\d+)?/.exec(line.slice(at));
        if (m) return `${m[1]!.startsWith('file:') ? new URL(m[1]!).pathname : m[1]}:${m[2]}`;
      }
    }
  }
  return undefined;
}

/**
 * Where a syntax error is. V8 keeps the location of a module's SyntaxError out of its stack, so the
 * file is checked again with `node --check`, whose first line of output is `file:line`. Runs only for
 * a plugin that already failed to import.
 */
function locateSyntaxError(entry: string): Promise<string | undefined> {
  return new Promise((resolveLine) => {
    execFile(process.execPath, ['--check', entry], { timeout: 5000 }, (_err, _stdout, stderr) => {
      const first = stderr.split('\n')[0] ?? '';
      const m = /^(.*):(\d+)$/.exec(first);
      resolveLine(m && resolve(m[1]!) === entry ? `${entry}:${m[2]}` : undefined);
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Checks a default export against its kind's contract; every problem at once. */
function checkExport(kind: PluginKind, value: unknown, entry: string, id: string): PluginProblem[] {
  const problems: PluginProblem[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [
      problem(
        'EXPORT_INVALID',
        entry,
        `an object describing a ${kind} plugin`,
        describeValue(typeof value === 'function' ? 'a function' : value),
        id,
      ),
    ];
  }
  const p = value as Record<string, unknown>;
  if (p.kind !== undefined && p.kind !== kind) {
    problems.push(
      problem(
        'KIND_MISMATCH',
        entry,
        `a ${kind} plugin, as plugin.json says`,
        `an export of kind '${describeValue(p.kind)}'`,
        id,
      ),
    );
    return problems;
  }
  const hooks: readonly string[] = kind === 'engine' ? ENGINE_HOOKS : CONNECTOR_HOOKS;
  const fields: readonly string[] = kind === 'engine' ? ENGINE_FIELDS : CONNECTOR_FIELDS;
  for (const [key, v] of Object.entries(p)) {
    if (hooks.includes(key)) {
      if (v !== undefined && typeof v !== 'function') {
        problems.push(
          problem('HOOK_NOT_FUNCTION', `${entry}#${key}`, `hook '${key}' to be a function`, describeValue(v), id),
        );
      }
    } else if (!fields.includes(key)) {
      problems.push(
        problem(
          'UNKNOWN_HOOK',
          `${entry}#${key}`,
          `one of the ${kind} hooks ${hooks.join(', ')} (or fields ${fields.join(', ')})`,
          `'${key}'`,
          id,
        ),
      );
    }
  }
  const missingHook = (name: string, why: string) => {
    if (typeof p[name] !== 'function' && p[name] === undefined) {
      problems.push(problem('EXPORT_INVALID', `${entry}#${name}`, `hook '${name}' (${why})`, 'nothing', id));
    }
  };
  if (kind === 'engine') {
    for (const h of ENGINE_REQUIRED_HOOKS) missingHook(h, 'every engine plugin has it');
    return problems;
  }
  const roles = p.roles;
  const validRoles = Array.isArray(roles) && roles.length > 0 && roles.every((r) => r === 'source' || r === 'sink');
  if (!validRoles) {
    problems.push(
      problem('EXPORT_INVALID', `${entry}#roles`, 'a non-empty array of "source" and "sink"', describeValue(roles), id),
    );
    return problems;
  }
  if (roles.includes('source')) {
    const bt = p.boundaryTypes;
    if (!Array.isArray(bt) || bt.length === 0 || !bt.every((t) => t === 'TIME' || t === 'OFFSET')) {
      problems.push(
        problem(
          'EXPORT_INVALID',
          `${entry}#boundaryTypes`,
          'a non-empty array of "TIME" and "OFFSET" (a source declares what it honours)',
          describeValue(bt),
          id,
        ),
      );
    }
    missingHook('fillInBoundaries', 'a source has it');
    for (const s of checkSchema(p.sourceOptions, 'sourceOptions')) {
      problems.push(
        problem('EXPORT_INVALID', `${entry}#sourceOptions`, 'a JSON Schema of the options (a source has it)', s, id),
      );
    }
  }
  if (roles.includes('sink')) {
    for (const s of checkSchema(p.sinkOptions, 'sinkOptions')) {
      problems.push(
        problem('EXPORT_INVALID', `${entry}#sinkOptions`, 'a JSON Schema of the options (a sink has it)', s, id),
      );
    }
  }
  return problems;
}

/**
 * Discovers, validates and loads every plugin. Manifests are all read and checked before any plugin
 * code is imported; a plugin with any problem is left out, and every problem of every plugin is
 * returned. Nothing a plugin does here can throw out of this function.
 */
export async function loadPlugins(options: LoadOptions): Promise<PluginSet> {
  const problems: PluginProblem[] = [];
  const roots = [...(options.bundledDir ? [options.bundledDir] : []), ...(options.extraDirs ?? [])];
  const candidates = (await Promise.all(roots.map((r) => discover(resolve(r), problems)))).flat();
  const manifests = await Promise.all(candidates.map((c) => readManifest(c.dir)));

  // Phase 1: manifests only. Duplicates are decided here so that the first-found plugin wins
  // deterministically (bundled before SLUICE_PLUGIN_PATH, folders in name order).
  const accepted: { candidate: Candidate; manifest: PluginManifest & { main: string } }[] = [];
  const seen = new Map<string, string>();
  candidates.forEach((candidate, i) => {
    const result = manifests[i]!;
    if (!result.ok) {
      problems.push(...result.problems);
      return;
    }
    const { manifest } = result;
    if (candidate.impliedKind && candidate.impliedKind !== manifest.kind) {
      problems.push(
        problem(
          'KIND_MISMATCH',
          join(candidate.dir, MANIFEST_FILE),
          `kind '${candidate.impliedKind}' (the plugin sits in ${candidate.impliedKind}s/)`,
          `kind '${manifest.kind}'`,
          manifest.id,
        ),
      );
      return;
    }
    const first = seen.get(manifest.id);
    if (first !== undefined) {
      problems.push(
        problem(
          'DUPLICATE_ID',
          candidate.dir,
          `an id not used by another plugin`,
          `id '${manifest.id}', already loaded from ${first}`,
          manifest.id,
        ),
      );
      return;
    }
    seen.set(manifest.id, candidate.dir);
    accepted.push({ candidate, manifest });
  });

  // Settings are read from the manifests too, before any code: a clash or an invalid value leaves the plugin out.
  const sources = options.settings ?? { env: process.env };
  const file = await readSettingsFile(sources.file);
  if (file.problem) problems.push(file.problem);
  const clashes = settingClashes(
    accepted.map((a) => ({ manifest: a.manifest, where: join(a.candidate.dir, MANIFEST_FILE) })),
  );
  const settingsOf = new Map<string, PluginSettings>();
  for (let i = accepted.length - 1; i >= 0; i--) {
    const { candidate, manifest } = accepted[i]!;
    const clash = clashes.get(manifest.id);
    const resolved = clash
      ? { problems: clash }
      : resolveSettings(manifest, join(candidate.dir, MANIFEST_FILE), sources.env, file.values[manifest.id]);
    if ('problems' in resolved) {
      problems.push(...resolved.problems);
      accepted.splice(i, 1);
    } else settingsOf.set(manifest.id, resolved.settings);
  }

  // Phase 2: import and check each accepted plugin's code.
  const timeoutMs = options.importTimeoutMs ?? 10_000;
  const loaded = await Promise.all(
    accepted.map(async ({ candidate, manifest }): Promise<LoadedPlugin<unknown> | undefined> => {
      const entry = resolveEntry(candidate.dir, manifest.main);
      if (!entry) {
        problems.push(
          problem(
            'ENTRY_MISSING',
            join(candidate.dir, manifest.main),
            `the entry module named by plugin.json#main`,
            'no such file',
            manifest.id,
          ),
        );
        return undefined;
      }
      let mod: Record<string, unknown>;
      try {
        mod = (await withTimeout(import(pathToFileURL(entry).href), timeoutMs, `import of ${entry}`)) as Record<
          string,
          unknown
        >;
      } catch (err) {
        const where =
          locate(err, candidate.dir) ??
          (err instanceof SyntaxError && !entry.endsWith('.ts') ? await locateSyntaxError(entry) : undefined) ??
          entry;
        const what = err instanceof Error ? `${err.name}: ${err.message}` : describeValue(err);
        problems.push(problem('IMPORT_FAILED', where, 'a module that imports without error', what, manifest.id));
        return undefined;
      }
      if (!('default' in mod) || mod.default === undefined) {
        problems.push(
          problem(
            'NO_DEFAULT_EXPORT',
            entry,
            `a default export (defineConnectorPlugin/defineEnginePlugin or a plain object)`,
            `exports: ${Object.keys(mod).join(', ') || 'none'}`,
            manifest.id,
          ),
        );
        return undefined;
      }
      const exportProblems = checkExport(manifest.kind, mod.default, entry, manifest.id);
      if (exportProblems.length > 0) {
        problems.push(...exportProblems);
        return undefined;
      }
      return {
        id: manifest.id,
        kind: manifest.kind,
        manifest,
        dir: candidate.dir,
        entry,
        plugin: mod.default,
        settings: settingsOf.get(manifest.id)!,
      };
    }),
  );

  const connectors = new Map<string, LoadedPlugin<ConnectorPlugin>>();
  const engines = new Map<string, LoadedPlugin<EnginePlugin>>();
  for (const p of loaded) {
    if (!p) continue;
    if (p.kind === 'connector') connectors.set(p.id, p as LoadedPlugin<ConnectorPlugin>);
    else engines.set(p.id, p as LoadedPlugin<EnginePlugin>);
  }
  return { connectors, engines, problems, roots: roots.map((r) => resolve(r)) };
}
