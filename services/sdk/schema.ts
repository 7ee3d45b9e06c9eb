import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { type FieldError, fieldError, MAX_REPORTED_FIELD_ERRORS } from './errors.js';

/**
 * A JSON Schema (draft 2020-12) of connector options: every standard keyword (`oneOf`, `$ref`, `const`,
 * `format`, `maxLength`, …), checked by Ajv in strict mode. It is plain data, so the catalog can show it
 * to clients (GetConnector) and validate options without running plugin code. The fields below are the
 * ones Sluice itself reads; any other standard keyword may be used.
 */
export interface JsonSchema {
  readonly [keyword: string]: unknown;
  readonly type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array';
  /** What the option means; every option of a bundled connector has one. */
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  /** Unknown options are rejected unless this is true (an object with `properties` is closed by default). */
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly (string | number | boolean)[];
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly pattern?: string;
  readonly examples?: readonly unknown[];
  /** A secret (JSON Schema's standard keyword): accepted, never returned or logged. */
  readonly writeOnly?: boolean;
}

// ajv-formats is CommonJS; its plugin is the module itself or its `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

/** One Ajv for every schema: draft 2020-12, strict (unknown keywords are schema errors), every error reported. */
const ajv = addFormats(new Ajv2020({ strict: true, allErrors: true, verbose: true, validateFormats: true }));
const compiled = new WeakMap<object, ValidateFunction>();

const COMBINATORS = ['allOf', 'anyOf', 'oneOf', '$ref', 'unevaluatedProperties', 'if', 'dependentSchemas'];

/**
 * A copy where every object schema that lists `properties` and says nothing of `additionalProperties`
 * rejects unknown options (JSON Schema allows them by default; a misspelt option should not pass silently).
 * Schemas that combine others (`oneOf`, `$ref`, …) are left as written.
 */
function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] = ['enum', 'const', 'default', 'examples'].includes(k) ? v : closeObjects(v);
  }
  if (
    out.properties !== undefined &&
    typeof out.properties === 'object' &&
    out.additionalProperties === undefined &&
    !COMBINATORS.some((c) => c in out)
  )
    out.additionalProperties = false;
  return out;
}

function compile(schema: JsonSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(closeObjects(schema) as object);
    compiled.set(schema, fn);
  }
  return fn;
}

/** Keywords whose value is one subschema, a map of them, or a list of them: where unknown keywords are looked for. */
const ONE_SCHEMA = [
  'items',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
  'additionalItems',
];
const SCHEMA_MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];

// The keywords Ajv's strict mode accepts (its own check reads the same table, but stops at the first unknown one).
const known = (ajv as unknown as { RULES: { keywords: Record<string, boolean | undefined> } }).RULES.keywords;

/** Every keyword Ajv does not know, anywhere in the schema, with its place (strict mode names only the first). */
function unknownKeywords(schema: unknown, path: string, out: FieldError[]): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return;
  for (const [k, v] of Object.entries(schema)) {
    if (known[k] !== true) out.push(fieldError(`${path}.${k}`, 'a JSON Schema 2020-12 keyword', k));
    else if (ONE_SCHEMA.includes(k)) unknownKeywords(v, `${path}.${k}`, out);
    else if (SCHEMA_MAP.includes(k) && typeof v === 'object' && v !== null)
      for (const [name, sub] of Object.entries(v)) unknownKeywords(sub, `${path}.${k}.${name}`, out);
    else if (SCHEMA_LIST.includes(k) && Array.isArray(v))
      v.forEach((sub, i) => unknownKeywords(sub, `${path}.${k}[${i}]`, out));
  }
}

/**
 * Problems with a schema itself, all of them (up to MAX_REPORTED_FIELD_ERRORS, then a count): what the draft
 * 2020-12 meta-schema rejects (a bad `type`, a negative `minLength`, …) and every unknown keyword, each as
 * `path: expected …, got …` with its place in the schema; then what only compiling finds (a bad `pattern`
 * or `$ref`). Empty when the schema is usable.
 */
export function checkSchema(schema: unknown, path = '$'): string[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return [`${path}: expected a JSON Schema object`];
  }
  const problems: FieldError[] = [];
  if (!ajv.validateSchema(schema)) {
    const errors = ajv.errors ?? [];
    const combinator = (e: ErrorObject) => e.keyword === 'oneOf' || e.keyword === 'anyOf';
    // Where the meta-schema's own `anyOf` failed (type: a name or a list of names), its first branch's
    // error is the one that says what was meant; the others and the `anyOf` itself repeat it.
    const alternatives = new Set(errors.filter(combinator).map((e) => e.instancePath));
    const told = new Set<string>();
    for (const e of errors) {
      if (alternatives.has(e.instancePath) && (told.has(e.instancePath) || combinator(e))) continue;
      told.add(e.instancePath);
      problems.push(toFieldError(e, schema, path));
    }
  }
  unknownKeywords(schema, path, problems);
  if (problems.length === 0) {
    try {
      compile(schema as JsonSchema);
    } catch (err) {
      return [`${path}: ${err instanceof Error ? err.message : String(err)}`];
    }
  }
  const shown = problems.slice(0, MAX_REPORTED_FIELD_ERRORS).map((p) => p.message);
  const more = problems.length - shown.length;
  return more > 0 ? [...shown, `${path}: and ${more} more problems`] : shown;
}

const EXPECTED: Record<string, string> = {
  object: 'an object',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  array: 'an array',
  null: 'null',
};

/** `options` + Ajv's JSON pointer, as `options.a.b[0]`. */
function toPath(base: string, pointer: string): string {
  let path = base;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
  }
  return path;
}

function at(value: unknown, pointer: string): unknown {
  let v = value;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
  }
  return v;
}

function typeText(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => EXPECTED[String(t)] ?? String(t)).join(' or ');
}

/**
 * How much of an error's parts a client is sent, counted as they travel in gRPC trailers: printable ASCII as
 * itself, any other character as its escape (`\uXXXX` in the `sluice-field-errors` JSON, up to 9 bytes
 * percent-encoded in `grpc-message`). Paths and values built from hostile option names and values must not swell
 * 20 field errors past what clients accept (an HTTP/2 header list of 64 KiB), or the call ends without a status.
 */
const MAX_ERROR_PATH_COST = 200;
const MAX_ERROR_RECEIVED_COST = 160;
const MAX_ERROR_EXPECTED_COST = 400;

/** The text, cut (with "...") so its trailer cost stays within the budget; unchanged when it fits. */
function bounded(text: string, budget: number): string {
  let cost = 0;
  let cut = -1;
  let i = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    cost += c >= 0x20 && c < 0x7f ? 1 : c > 0xffff ? 12 : 9;
    if (cut < 0 && cost > budget - 3) cut = i;
    if (cost > budget) return `${text.slice(0, cut)}...`;
    i += ch.length;
  }
  return text;
}

/** One Ajv error as Sluice's field error: path, what was expected, what came; each bounded for the trailers. */
function toFieldError(e: ErrorObject, value: unknown, base: string): FieldError {
  const error = fieldErrorOf(e, value, base);
  const path = bounded(error.path, MAX_ERROR_PATH_COST);
  const expected = bounded(error.expected, MAX_ERROR_EXPECTED_COST);
  const received = bounded(error.received, MAX_ERROR_RECEIVED_COST);
  if (path === error.path && expected === error.expected && received === error.received) return error;
  return { path, expected, received, message: `${path}: expected ${expected}, got ${received}` };
}

function fieldErrorOf(e: ErrorObject, value: unknown, base: string): FieldError {
  const path = toPath(base, e.instancePath);
  const got = at(value, e.instancePath);
  const p = e.params as Record<string, unknown>;
  const parent = e.parentSchema as JsonSchema | undefined;
  switch (e.keyword) {
    case 'type':
      return fieldError(path, typeText(p.type), got);
    case 'required': {
      const name = String(p.missingProperty);
      const sub = (parent?.properties as Record<string, JsonSchema> | undefined)?.[name];
      return fieldError(
        `${path}.${name}`,
        sub?.type ? `${typeText(sub.type)} (required)` : 'a value (required)',
        undefined,
      );
    }
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const known = Object.keys((parent?.properties as object | undefined) ?? {});
      // The name is what is wrong, so it is what is reported as received.
      return fieldError(
        `${path}.${name}`,
        known.length ? `a known option (${known.join(', ')})` : 'no options at all',
        name,
      );
    }
    case 'enum':
      return fieldError(path, `one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`, got);
    case 'const':
      return fieldError(path, JSON.stringify(p.allowedValue), got);
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return fieldError(path, `a number ${String(p.comparison)} ${String(p.limit)}`, got);
    case 'minLength':
      return fieldError(
        path,
        p.limit === 1 ? 'a non-empty string' : `a string of at least ${String(p.limit)} characters`,
        got,
      );
    case 'maxLength':
      return fieldError(path, `a string of at most ${String(p.limit)} characters`, got);
    case 'pattern':
      return fieldError(path, `a string matching /${String(p.pattern)}/`, got);
    case 'format':
      return fieldError(path, `a string in the format ${String(p.format)}`, got);
    case 'oneOf':
      return fieldError(path, 'exactly one of the alternatives the schema allows (oneOf)', got);
    case 'anyOf':
      return fieldError(path, 'one of the alternatives the schema allows (anyOf)', got);
    default:
      return fieldError(path, `a value that ${e.message ?? `passes '${e.keyword}'`}`, got);
  }
}

/**
 * Validates a value against a schema with Ajv and returns every problem, each naming its path (e.g.
 * `options.topic`), what was expected and what came. Inside a `oneOf`/`anyOf` that failed, the branches'
 * own errors are left out: the one error names the alternatives. Unknown properties of an object with
 * `properties` are errors unless additionalProperties says otherwise.
 */
export function validateAgainstSchema(schema: JsonSchema, value: unknown, path = 'options'): FieldError[] {
  const validate = compile(schema);
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  const combinators = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
    .map((e) => `${e.schemaPath}/`);
  // A wrong type at a path says all there is to say about that value.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const order = new KeyOrder();
  return errors
    .filter((e) => !combinators.some((c) => e.schemaPath.startsWith(c)))
    .filter((e) => e.keyword === 'type' || !wrongType.has(e.instancePath))
    .map((e) => ({ key: position(e, value, order), error: toFieldError(e, value, path) }))
    .sort((a, b) => compareKeys(a.key, b.key))
    .map((e) => e.error);
}

/**
 * Where each key of an object was written, read once per object: an object with n keys and n errors costs
 * O(n), not the O(n²) of looking each key up in Object.keys (a wide options object blocked the service).
 */
class KeyOrder {
  readonly #indexes = new WeakMap<object, Map<string, number>>();

  indexOf(object: unknown, key: string): number {
    if (typeof object !== 'object' || object === null) return -1;
    let indexes = this.#indexes.get(object);
    if (!indexes) {
      indexes = new Map(Object.keys(object).map((k, i) => [k, i]));
      this.#indexes.set(object, indexes);
    }
    return indexes.get(key) ?? -1;
  }
}

/**
 * Where an error sits in the value, for a stable reading order: missing required options first, then the
 * given ones in the order they were written, depth first.
 */
function position(e: ErrorObject, value: unknown, order: KeyOrder): number[] {
  const key: number[] = [];
  let v = value;
  for (const raw of e.instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    key.push(Array.isArray(v) ? Number(part) : order.indexOf(v, part));
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
  }
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') key.push(-1);
  else if (e.keyword === 'additionalProperties') key.push(order.indexOf(v, String(p.additionalProperty)));
  return key;
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The options with every schema default filled in for options that were not given. */
export function applyDefaults(schema: JsonSchema, options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const [name, sub] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    if (out[name] === undefined && sub.default !== undefined) out[name] = sub.default;
  }
  return out;
}
