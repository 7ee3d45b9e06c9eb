import { basename } from 'node:path';
import {
  ERROR_CODES,
  SluiceError,
  applyDefaults,
  describeValue,
  fieldError,
  invalidArgument,
  invalidFields,
  notFound,
  validateAgainstSchema,
  type Availability,
  type Boundaries,
  type BoundaryType,
  type ConnectorPlugin,
  type ConnectorRole,
  type EnginePlugin,
  type FieldError,
  type JsonSchema,
  type Options,
} from 'sluice/sdk';
import { checkBoundaries } from '../../core/boundaries.js';
import { checkSecretRef, restoreRefs, secretRefs, withRefPlaceholders } from '../../core/option-secrets.js';
import { type Page, paginate } from '../../core/paging.js';
import type { HookRunner } from '../../host/hook-runner.js';
import type { LoadedPlugin, PluginSet } from '../../host/loader.js';
import type { PluginProblem } from '../../host/problems.js';
import { maskFieldErrors } from './masked-errors.js';
import { relativeProblem } from './problem-paths.js';

/** How long ListEngines waits for an engine's live check before calling the engine unavailable. */
const ABOUT_TIMEOUT_MS = 2_000;

export interface ConnectorInfo {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  readonly roles: readonly ConnectorRole[];
  readonly boundaryTypes: readonly BoundaryType[];
  readonly sourceOptionsSchema?: JsonSchema;
  readonly sinkOptionsSchema?: JsonSchema;
  readonly reader: Availability;
  readonly writer: Availability;
  readonly pluginPath: string;
  /** plugin.json#settings, if any: the schema only, never the values. */
  readonly settingsSchema?: JsonSchema;
}

export interface EngineInfo {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  readonly pluginPath: string;
  /** Unavailable while a required setting is missing, with the reason. */
  readonly availability: Availability;
  /** The counterpart the engine drives and its version, from its `about` hook. */
  readonly remote?: string;
  readonly settingsSchema?: JsonSchema;
}

export interface ResolvedBoundaries {
  readonly boundedOptions: Options;
  readonly boundaries: Boundaries;
}

const AVAILABLE: Availability = { available: true };

/** The options schemas as objects, one per plugin schema: validateAgainstSchema caches its compiled check per object. */
const objectSchemas = new WeakMap<JsonSchema, JsonSchema>();

/**
 * The plugin's options schema with `type: object`, the same object every time: a new one per call compiled the
 * schema again on every validation (about 13 ms of CPU each, and the compiler kept every copy), which every
 * submitted window paid.
 */
function objectSchema(schema: JsonSchema): JsonSchema {
  let wrapped = objectSchemas.get(schema);
  if (!wrapped) objectSchemas.set(schema, (wrapped = { type: 'object', ...schema } as JsonSchema));
  return wrapped;
}

/** The connector catalog's use cases, over the loaded plugins; every plugin call goes through the hook runner. */
export class Catalog {
  readonly #plugins: PluginSet;
  readonly #hooks: HookRunner;

  constructor(plugins: PluginSet, hooks: HookRunner) {
    this.#plugins = plugins;
    this.#hooks = hooks;
  }

  #connector(id: string): LoadedPlugin<ConnectorPlugin> {
    if (id === '') throw invalidArgument('connector_id', 'a connector id', id);
    const c = this.#plugins.connectors.get(id);
    if (!c) throw notFound('connector', id);
    return c;
  }

  async #info(c: LoadedPlugin<ConnectorPlugin>): Promise<ConnectorInfo> {
    const p = c.plugin;
    const roles = p.roles;
    const none = (role: ConnectorRole): Availability => ({
      available: false,
      reason: `connector '${c.id}' has no ${role} role`,
    });
    let reader: Availability = roles.includes('source')
      ? this.#hooks.has(c, 'openReader')
        ? AVAILABLE
        : { available: false, reason: 'the connector has no embedded reader' }
      : none('source');
    let writer: Availability = roles.includes('sink')
      ? this.#hooks.has(c, 'openWriter')
        ? AVAILABLE
        : { available: false, reason: 'the connector has no embedded writer' }
      : none('sink');
    // A required setting missing makes both sides unavailable, whatever the plugin would say.
    const settings = c.settings?.availability;
    if (settings && !settings.available) {
      if (reader.available) reader = settings;
      if (writer.available) writer = settings;
    } else if (this.#hooks.has(c, 'availability')) {
      try {
        const a = await this.#hooks.call(c, 'availability', undefined);
        if (a.reader && reader.available) reader = a.reader;
        if (a.writer && writer.available) writer = a.writer;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        reader = { available: false, reason };
        writer = { available: false, reason };
      }
    }
    return {
      id: c.id,
      version: c.manifest.version,
      description: c.manifest.description,
      roles,
      boundaryTypes: roles.includes('source') ? (p.boundaryTypes ?? []) : [],
      ...(p.sourceOptions ? { sourceOptionsSchema: p.sourceOptions } : {}),
      ...(p.sinkOptions ? { sinkOptionsSchema: p.sinkOptions } : {}),
      reader,
      writer,
      pluginPath: basename(c.dir),
      ...(c.manifest.settings ? { settingsSchema: c.manifest.settings } : {}),
    };
  }

  async listConnectors(query: {
    role?: ConnectorRole;
    pageSize: number;
    pageToken: string;
  }): Promise<Page<ConnectorInfo>> {
    const all = [...this.#plugins.connectors.values()].filter(
      (c) => !query.role || c.plugin.roles.includes(query.role),
    );
    const page = paginate(all, (c) => c.id, query.pageSize, query.pageToken);
    return { items: await Promise.all(page.items.map((c) => this.#info(c))), nextPageToken: page.nextPageToken };
  }

  /** The connector's option schema for the role (to mask its writeOnly options in answers). */
  optionsSchema(id: string, role: ConnectorRole): JsonSchema | undefined {
    const p = this.#connector(id).plugin;
    return role === 'source' ? p.sourceOptions : p.sinkOptions;
  }

  getConnector(id: string): Promise<ConnectorInfo> {
    return this.#info(this.#connector(id));
  }

  /**
   * Every problem with the options for the role: the schema first, then the connector's own checks
   * (run only on options the schema accepts, so a connector sees well-typed options).
   */
  async validateOptions(id: string, role: ConnectorRole, given: Options): Promise<readonly FieldError[]> {
    const c = this.#connector(id);
    if (!c.plugin.roles.includes(role)) {
      throw invalidArgument('role', `a role connector '${id}' has (${c.plugin.roles.join(', ')})`, role);
    }
    // A secret reference ({"secretRef": "env:NAME"}) is read only when a job runs: its form is checked here,
    // and what the schema or the connector would say of its value is not known yet.
    const refs = secretRefs(given);
    const refPaths = new Set(refs.map(([p]) => `options.${p}`));
    const refErrors: FieldError[] = [];
    for (const [path, ref] of refs) {
      const problem = checkSecretRef(ref);
      if (problem) refErrors.push(fieldError(`options.${path}`, `a secret reference ${problem}`, ref));
    }
    if (refErrors.length > 0) return refErrors;
    const options = withRefPlaceholders(given).options;
    const notRef = (e: FieldError) => !refPaths.has(e.path);
    const schema = role === 'source' ? c.plugin.sourceOptions : c.plugin.sinkOptions;
    const errors = (schema ? validateAgainstSchema(objectSchema(schema), options, 'options') : []).filter(notRef);
    // What an error echoes of a value has its secrets (writeOnly options, URL passwords) masked.
    if (errors.length > 0 || !this.#hooks.has(c, 'validate')) return maskFieldErrors(errors, options, schema);
    const own = await this.#hooks.call(c, 'validate', {
      role,
      options: schema ? applyDefaults(schema, options) : options,
    });
    if (!Array.isArray(own)) {
      throw new SluiceError(
        ERROR_CODES.PLUGIN_FAILED,
        `plugin '${id}' hook 'validate' returned ${describeValue(own)} instead of a list of field errors`,
        { pluginId: id, hook: 'validate' },
      );
    }
    return maskFieldErrors(
      own
        .map((e: FieldError) => {
          const path = e.path.startsWith('options') ? e.path : `options.${e.path}`;
          return e.message ? { ...e, path } : fieldError(path, e.expected, e.received);
        })
        .filter(notRef),
      options,
      schema,
    );
  }

  /** The bounded source options one window reads with (the connector's fillInBoundaries). */
  async resolveBoundaries(id: string, options: Options, boundaries: Boundaries): Promise<ResolvedBoundaries> {
    const c = this.#connector(id);
    if (!c.plugin.roles.includes('source')) {
      throw invalidArgument(
        'connector_id',
        'a connector with the source role',
        `${id} (roles: ${c.plugin.roles.join(', ')})`,
      );
    }
    checkBoundaries(boundaries, c.plugin.boundaryTypes ?? [], id);
    const errors = await this.validateOptions(id, 'source', options);
    if (errors.length > 0) throw invalidFields(errors, `options of connector '${id}' are invalid`);
    // Secret references stay references: the connector bounds placeholders, which are put back after.
    const placed = withRefPlaceholders(options);
    const withDefaults = c.plugin.sourceOptions
      ? applyDefaults(c.plugin.sourceOptions, placed.options)
      : placed.options;
    const bounded = await this.#hooks.call(c, 'fillInBoundaries', { options: withDefaults, boundaries });
    if (typeof bounded !== 'object' || bounded === null || Array.isArray(bounded)) {
      throw new SluiceError(
        ERROR_CODES.PLUGIN_FAILED,
        `plugin '${id}' hook 'fillInBoundaries' returned ${describeValue(bounded)} instead of an options object`,
        { pluginId: id, hook: 'fillInBoundaries' },
      );
    }
    return { boundedOptions: restoreRefs(bounded, placed.refs), boundaries };
  }

  /** The source's canonical form of a window's bounds (its canonicalBoundaries hook); undefined without the hook. */
  async canonicalBoundaries(id: string, boundaries: Boundaries): Promise<Boundaries | undefined> {
    const c = this.#connector(id);
    if (!this.#hooks.has(c, 'canonicalBoundaries')) return undefined;
    const out = await this.#hooks.call(c, 'canonicalBoundaries', { boundaries });
    if (
      typeof out !== 'object' ||
      out === null ||
      out.boundaryType !== boundaries.boundaryType ||
      typeof out.lowerBound !== 'string' ||
      typeof out.upperBound !== 'string'
    ) {
      throw new SluiceError(
        ERROR_CODES.PLUGIN_FAILED,
        `plugin '${id}' hook 'canonicalBoundaries' returned ${describeValue(out)} instead of bounds of the same type`,
        { pluginId: id, hook: 'canonicalBoundaries' },
      );
    }
    return out;
  }

  /**
   * The engines, each with its settings' availability and, when the engine has an `about` hook and its
   * settings are complete, what its live check says (its counterpart's version, or why it does not answer).
   */
  async listEngines(query: { pageSize: number; pageToken: string }): Promise<Page<EngineInfo>> {
    const page = paginate([...this.#plugins.engines.values()], (e) => e.id, query.pageSize, query.pageToken);
    const items = await Promise.all(page.items.map((e) => this.#engineInfo(e)));
    return { items, nextPageToken: page.nextPageToken };
  }

  async #engineInfo(e: LoadedPlugin<EnginePlugin>): Promise<EngineInfo> {
    let availability: Availability = e.settings?.availability ?? AVAILABLE;
    let remote: string | undefined;
    if (availability.available && this.#hooks.has(e, 'about')) {
      try {
        const about = await this.#hooks.call(e, 'about', undefined, { timeoutMs: ABOUT_TIMEOUT_MS });
        remote = typeof about.remote === 'string' ? about.remote : undefined;
        if (about.availability && !about.availability.available) availability = about.availability;
      } catch (err) {
        availability = { available: false, reason: err instanceof Error ? err.message : String(err) };
      }
    }
    return {
      id: e.id,
      version: e.manifest.version,
      description: e.manifest.description,
      pluginPath: basename(e.dir),
      availability,
      ...(remote ? { remote } : {}),
      ...(e.manifest.settings ? { settingsSchema: e.manifest.settings } : {}),
    };
  }

  /**
   * Every plugin left out, with paths relative to the plugin folder they were found in (where Sluice is
   * installed is not told to callers; the service log line `plugin left out` has the absolute path).
   */
  listPluginProblems(): readonly PluginProblem[] {
    return this.#plugins.problems.map((p) => relativeProblem(p, this.#plugins.roots ?? []));
  }
}
