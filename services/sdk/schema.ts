import { type FieldError, fieldError } from './errors.js';

/**
 * The JSON Schema subset Sluice uses for connector options. It is plain data, so the catalog can show it
 * to clients (GetConnector) and validate options without running plugin code.
 */
export interface JsonSchema {
  readonly type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array';
  /** What the option means; every option of a bundled connector has one. */
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  /** Unknown options are rejected unless this is true. */
  readonly additionalProperties?: boolean;
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

const SCHEMA_KEYS = new Set([
  'type',
  'description',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'pattern',
  'examples',
  'writeOnly',
  'title',
  '$schema',
]);
const TYPES = new Set(['object', 'string', 'integer', 'number', 'boolean', 'array']);

/** Problems with a schema itself (an unknown keyword, a bad type); empty when it is usable. */
export function checkSchema(schema: unknown, path = '$'): string[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return [`${path}: expected a JSON Schema object`];
  }
  const s = schema as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(s)) {
    if (!SCHEMA_KEYS.has(key)) problems.push(`${path}: unsupported keyword '${key}'`);
  }
  if (s.type !== undefined && !TYPES.has(s.type as string)) {
    problems.push(`${path}.type: expected one of ${[...TYPES].join(', ')}`);
  }
  if (s.pattern !== undefined) {
    try {
      new RegExp(String(s.pattern), 'u');
    } catch {
      problems.push(`${path}.pattern: not a valid regular expression`);
    }
  }
  if (s.properties !== undefined) {
    if (typeof s.properties !== 'object' || s.properties === null) {
      problems.push(`${path}.properties: expected an object`);
    } else {
      for (const [name, sub] of Object.entries(s.properties)) {
        problems.push(...checkSchema(sub, `${path}.properties.${name}`));
      }
    }
  }
  if (s.items !== undefined) problems.push(...checkSchema(s.items, `${path}.items`));
  return problems;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function matchesType(type: string, value: unknown): boolean {
  const actual = typeOf(value);
  if (type === 'number') return actual === 'number' || actual === 'integer';
  return actual === type;
}

const EXPECTED: Record<string, string> = {
  object: 'an object',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  array: 'an array',
};

/**
 * Validates a value against a schema of the subset above and returns every problem, each naming its
 * path (e.g. `options.topic`). Unknown properties of an object are errors unless additionalProperties.
 */
export function validateAgainstSchema(schema: JsonSchema, value: unknown, path = 'options'): FieldError[] {
  const errors: FieldError[] = [];
  if (schema.type && !matchesType(schema.type, value)) {
    errors.push(fieldError(path, EXPECTED[schema.type] ?? schema.type, value));
    return errors;
  }
  if (schema.enum && !schema.enum.includes(value as string | number | boolean)) {
    errors.push(fieldError(path, `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`, value));
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) {
      errors.push(fieldError(path, `a number >= ${schema.minimum}`, value));
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      errors.push(fieldError(path, `a number <= ${schema.maximum}`, value));
    }
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      errors.push(
        fieldError(
          path,
          schema.minLength === 1 ? 'a non-empty string' : `a string of at least ${schema.minLength} characters`,
          value,
        ),
      );
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(fieldError(path, `a string matching /${schema.pattern}/`, value));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => errors.push(...validateAgainstSchema(schema.items!, item, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object' && (schema.properties || schema.required || schema.type === 'object')) {
    const obj = value as Record<string, unknown>;
    const props = schema.properties ?? {};
    for (const name of schema.required ?? []) {
      if (obj[name] === undefined) {
        const sub = props[name];
        errors.push(
          fieldError(
            `${path}.${name}`,
            sub?.type ? `${EXPECTED[sub.type] ?? sub.type} (required)` : 'a value (required)',
            undefined,
          ),
        );
      }
    }
    for (const [name, v] of Object.entries(obj)) {
      const sub = props[name];
      if (sub) {
        if (v !== undefined) errors.push(...validateAgainstSchema(sub, v, `${path}.${name}`));
      } else if (schema.additionalProperties !== true) {
        const known = Object.keys(props);
        // The name is what is wrong, so it is what is reported as received.
        errors.push(
          fieldError(
            `${path}.${name}`,
            known.length ? `a known option (${known.join(', ')})` : 'no options at all',
            name,
          ),
        );
      }
    }
  }
  return errors;
}

/** The options with every schema default filled in for options that were not given. */
export function applyDefaults(schema: JsonSchema, options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    if (out[name] === undefined && sub.default !== undefined) out[name] = sub.default;
  }
  return out;
}
