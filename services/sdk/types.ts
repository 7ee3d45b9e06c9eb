import type { JsonSchema } from './schema.js';

/** How a window's bounds are expressed. */
export type BoundaryType = 'TIME' | 'OFFSET';

/**
 * The slice of a source one window reads: `lowerBound` inclusive, `upperBound` exclusive.
 * TIME bounds are epoch milliseconds as decimal strings; OFFSET bounds are connector-defined positions.
 */
export interface Boundaries {
  readonly boundaryType: BoundaryType;
  readonly lowerBound: string;
  readonly upperBound: string;
}

/** Connector options: JSON values keyed by option name. */
export type Options = Readonly<Record<string, unknown>>;

/** One record as it flows from a reader to a writer. */
export type Row = Readonly<Record<string, unknown>>;

/** Structured log lines; the service decides where they go. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Given to every hook call. */
export interface HookContext {
  /** Aborted when the hook's timeout passes or the job is cancelled; long work should watch it. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The plugin's id, from its manifest. */
  readonly pluginId: string;
  /**
   * The plugin's settings, as declared in plugin.json#settings and read from SLUICE_PLUGIN_<ID>_<SETTING>
   * or the settings file, checked and typed (defaults filled in). A required setting that is missing is
   * absent here (the plugin is listed as unavailable). Secrets (`writeOnly`) are here too: never log them.
   */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** The manifest every plugin folder holds as `plugin.json`; read before any plugin code runs. */
export interface PluginManifest {
  /** Unique id: lower-case letters, digits, dots and dashes, starting with a letter. */
  readonly id: string;
  readonly kind: 'engine' | 'connector';
  /** The plugin API this plugin was written for; must equal PLUGIN_API_VERSION. */
  readonly apiVersion: number;
  /** The plugin's own version (semver). */
  readonly version: string;
  readonly description: string;
  /** Entry module, relative to the folder; default `index.js`. */
  readonly main?: string;
  /**
   * The settings the plugin needs (a URL, credentials): a JSON Schema of type object whose properties
   * are camelCase names; secrets are marked `writeOnly: true`. Each is read from the environment as
   * SLUICE_PLUGIN_<ID>_<SETTING> (upper snake case) or from the settings file.
   */
  readonly settings?: JsonSchema;
}

/** The plugin API version this SDK speaks. A manifest with another apiVersion is not loaded. */
export const PLUGIN_API_VERSION = 1;
