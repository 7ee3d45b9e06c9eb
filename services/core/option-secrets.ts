import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, SluiceError, type JsonSchema, type Options } from 'sluice/sdk';
import { SecretBox } from './secret-box.js';

/** What a secret is shown as wherever options leave the service. */
export const MASK = '***';

/**
 * A secret option value as stored: encrypted (`$sealed`), with what callers are shown instead (`shown`:
 * `***`, or a URL with its password masked). Plain JSON, so it is stored like any other option value.
 */
export interface SealedValue {
  readonly $sealed: string;
  readonly shown: string;
}

/** A secret kept outside Sluice: `env:NAME` (a variable of the service process) or `file:/path`. */
export interface SecretRef {
  readonly secretRef: string;
}

/** How deep option objects are searched for secrets (Struct depth is limited further at the API). */
const MAX_DEPTH = 24;
/** Secrets shorter than this are not cut out of free text (a 1-character password would cut every message). */
const MIN_SCRUB_LENGTH = 3;

export function isSealed(v: unknown): v is SealedValue {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as SealedValue).$sealed === 'string' &&
    typeof (v as SealedValue).shown === 'string'
  );
}

export function isSecretRef(v: unknown): v is SecretRef {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    typeof (v as SecretRef).secretRef === 'string'
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The URL with its password replaced by `***`, or undefined when the text is not a URL with a password. */
export function maskUrlPassword(text: string): string | undefined {
  if (!text.includes('@') || !text.includes(':')) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.password === '' || url.password === MASK) return undefined;
  url.password = MASK;
  return url.toString();
}

/** The schema of each property of an object schema that is an object itself (options nest, e.g. `sasl`). */
function propertySchema(schema: JsonSchema | undefined, key: string): JsonSchema | undefined {
  const p = schema?.properties?.[key];
  return typeof p === 'object' && p !== null ? p : undefined;
}

function mapValues(
  options: Readonly<Record<string, unknown>>,
  schema: JsonSchema | undefined,
  fn: (value: unknown, schema: JsonSchema | undefined, path: string) => unknown,
  path: string,
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    const sub = propertySchema(schema, k);
    const at = path ? `${path}.${k}` : k;
    out[k] =
      isObject(v) && !isSealed(v) && !isSecretRef(v) && sub?.writeOnly !== true && depth < MAX_DEPTH
        ? mapValues(v, sub, fn, at, depth + 1)
        : Array.isArray(v) && sub?.writeOnly !== true && depth < MAX_DEPTH
          ? v.map((item, i) =>
              isObject(item) && !isSealed(item) && !isSecretRef(item)
                ? mapValues(item, sub?.items, fn, `${at}[${i}]`, depth + 1)
                : fn(item, undefined, `${at}[${i}]`),
            )
          : fn(v, sub, at);
  }
  return out;
}

/** Every secret-reference in the options, by path (`sasl.password`, `hosts[1]`). */
export function secretRefs(options: Options): [path: string, ref: string][] {
  const refs: [string, string][] = [];
  mapValues(options, undefined, (v, _s, at) => (isSecretRef(v) ? refs.push([at, v.secretRef]) : undefined), '', 0);
  return refs;
}

/** A copy with every secret shown as callers see it: sealed values as `shown`, URL passwords masked; refs as written. */
export function maskOptions(options: Options): Options {
  return mapValues(
    options,
    undefined,
    (v) => (isSealed(v) ? v.shown : typeof v === 'string' ? (maskUrlPassword(v) ?? v) : v),
    '',
    0,
  ) as Options;
}

/**
 * A copy with every secret-reference replaced by a placeholder text (to validate options, or bound them,
 * before the secret is read at run time), and the map back from each placeholder to its reference.
 */
export function withRefPlaceholders(options: Options): { options: Options; refs: Map<string, SecretRef> } {
  const refs = new Map<string, SecretRef>();
  const out = mapValues(
    options,
    undefined,
    (v) => {
      if (!isSecretRef(v)) return v;
      const placeholder = `secret-ref-${refs.size}-${randomBytes(6).toString('hex')}`;
      refs.set(placeholder, v);
      return placeholder;
    },
    '',
    0,
  ) as Options;
  return { options: out, refs };
}

/** `options` with every placeholder of withRefPlaceholders put back as its reference. */
export function restoreRefs(options: Options, refs: ReadonlyMap<string, SecretRef>): Options {
  if (refs.size === 0) return options;
  return mapValues(options, undefined, (v) => (typeof v === 'string' ? (refs.get(v) ?? v) : v), '', 0) as Options;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Secret options: sealed (AES-256-GCM) before they are stored, opened only to validate and to run a job,
 * shown as `***` everywhere else. An option is secret when the connector's schema marks it `writeOnly:
 * true`, or when its value is a URL with a password.
 */
export class OptionSecrets {
  readonly #box: SecretBox;

  constructor(box: SecretBox) {
    this.#box = box;
  }

  #sealValue(value: unknown, shown: string): SealedValue {
    return { $sealed: this.#box.seal(JSON.stringify(value)), shown };
  }

  /** A copy ready to store: secret values sealed; sealed values and refs kept as they are. */
  seal(options: Options, schema: JsonSchema | undefined): Options {
    return mapValues(
      options,
      schema,
      (v, s) => {
        if (isSealed(v) || isSecretRef(v) || v === undefined || v === null) return v;
        if (s?.writeOnly === true) return this.#sealValue(v, MASK);
        if (typeof v === 'string') {
          const shown = maskUrlPassword(v);
          if (shown !== undefined) return this.#sealValue(v, shown);
        }
        return v;
      },
      '',
      0,
    ) as Options;
  }

  /** A copy with sealed values opened (refs kept): what validation and fillInBoundaries see. */
  open(options: Options): Options {
    return mapValues(
      options,
      undefined,
      (v, _s, at) => {
        if (!isSealed(v)) return v;
        try {
          return JSON.parse(this.#box.open(v.$sealed)) as unknown;
        } catch {
          throw new SluiceError(
            ERROR_CODES.FAILED_PRECONDITION,
            `option '${at}' was stored under another secret key and cannot be opened; set SLUICE_SECRET_KEY to the key it was stored with, or set the option again`,
            { field: `options.${at}` },
          );
        }
      },
      '',
      0,
    ) as Options;
  }

  /**
   * The options a client sent back for an update, with `***` (and URLs whose password is `***`) replaced by
   * the stored secret at the same place, so a client that read the group can send it back unchanged.
   */
  restore(sent: Options, stored: Options | undefined): Options {
    if (!stored) return sent;
    const storedAt = (path: string): unknown => {
      let cur: unknown = stored;
      for (const part of path.split('.')) {
        const m = /^(.*?)((?:\[\d+\])*)$/.exec(part)!;
        cur = isObject(cur) ? cur[m[1]!] : undefined;
        for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) cur = Array.isArray(cur) ? cur[Number(idx[1])] : undefined;
      }
      return cur;
    };
    return mapValues(
      sent,
      undefined,
      (v, _s, at) => {
        if (typeof v !== 'string' || !v.includes(MASK)) return v;
        const old = storedAt(at);
        if (!isSealed(old)) return v;
        if (v === MASK || v === old.shown) return old;
        // A URL sent back with its password masked but something else changed: keep the stored password.
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return v;
        }
        if (url.password !== MASK) return v;
        const plain = JSON.parse(this.#box.open(old.$sealed)) as unknown;
        if (typeof plain !== 'string') return v;
        try {
          url.password = new URL(plain).password;
        } catch {
          return v;
        }
        return url.toString();
      },
      '',
      0,
    ) as Options;
  }

  /**
   * Bounded options (fillInBoundaries' answer, computed from opened options) sealed again: a value equal to
   * an opened secret of the input gets the input's sealed value (or its ref) back, then anything secret is sealed.
   */
  reseal(bounded: Options, input: Options, opened: Options, schema: JsonSchema | undefined): Options {
    const secretsByPath = new Map<string, { stored: unknown; plain: unknown }>();
    const collect = (stored: unknown, plain: unknown, path: string, depth: number) => {
      if (isSealed(stored) || isSecretRef(stored)) secretsByPath.set(path, { stored, plain });
      else if (isObject(stored) && isObject(plain) && depth < MAX_DEPTH)
        for (const [k, v] of Object.entries(stored)) collect(v, plain[k], path ? `${path}.${k}` : k, depth + 1);
    };
    collect(input, opened, '', 0);
    const back = mapValues(
      bounded,
      undefined,
      (v, _s, at) => {
        const secret = secretsByPath.get(at);
        return secret && sameJson(secret.plain, v) ? secret.stored : v;
      },
      '',
      0,
    ) as Options;
    return this.seal(back, schema);
  }

  /** Every secret value in the options in clear (sealed ones opened), to cut out of error messages. */
  plainSecrets(options: Options): string[] {
    const out: string[] = [];
    const add = (v: unknown) => {
      if (typeof v === 'string') {
        out.push(v);
        try {
          const url = new URL(v);
          if (url.password) out.push(url.password, decodeURIComponent(url.password));
        } catch {
          // not a URL: the value itself is the secret
        }
      } else if (v !== undefined && v !== null) out.push(JSON.stringify(v));
    };
    mapValues(
      options,
      undefined,
      (v) => {
        if (isSealed(v)) {
          try {
            add(JSON.parse(this.#box.open(v.$sealed)));
          } catch {
            // a value that cannot be opened cannot leak either
          }
        }
        return v;
      },
      '',
      0,
    );
    return out.filter((s) => s.length >= MIN_SCRUB_LENGTH);
  }
}

/** `text` with every secret replaced by `***`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (s.length > 0) out = out.split(s).join(MASK);
  return out;
}

/**
 * The options with every `{"secretRef": …}` replaced by the value it points to: `env:NAME` reads the
 * service's environment, `file:/path` a file (one trailing newline dropped). Called only when a job runs;
 * the value is never stored. A missing one is FAILED_PRECONDITION naming the option and the reference.
 */
export async function resolveSecretRefs(
  options: Options,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ options: Options; values: string[] }> {
  const refs = secretRefs(options);
  if (refs.length === 0) return { options, values: [] };
  const values = new Map<string, string>();
  const fail = (at: string, ref: string, why: string) =>
    new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `option '${at}': secret reference '${ref}' ${why}`, {
      field: `options.${at}`,
    });
  for (const [at, ref] of refs) {
    if (ref.startsWith('env:')) {
      const value = env[ref.slice(4)];
      if (value === undefined) throw fail(at, ref, 'names a variable the service process does not have');
      values.set(at, value);
    } else if (ref.startsWith('file:')) {
      try {
        values.set(at, (await readFile(ref.slice(5), 'utf8')).replace(/\r?\n$/, ''));
      } catch (err) {
        throw fail(at, ref, `names a file the service cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else throw fail(at, ref, 'is neither env:NAME nor file:/path');
  }
  return {
    options: mapValues(options, undefined, (v, _s, at) => (isSecretRef(v) ? values.get(at) : v), '', 0) as Options,
    values: [...values.values()].filter((v) => v.length >= MIN_SCRUB_LENGTH),
  };
}

/** A problem with a secret reference's form, for validation; undefined when it is env:NAME or file:/absolute. */
export function checkSecretRef(ref: string): string | undefined {
  if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(ref)) return undefined;
  if (/^file:\//.test(ref)) return undefined;
  return 'env:NAME or file:/absolute/path';
}

/** A key for tests and for services built without one: the same in the whole process, so replicas in one process agree. */
let processKey: Buffer | undefined;
export function processSecretBox(): SecretBox {
  processKey ??= randomBytes(32);
  return new SecretBox(processKey);
}
