import { randomBytes } from 'node:crypto';
import { constants as fsConstants, realpathSync } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import {
  ERROR_CODES,
  SluiceError,
  isSecretEnvAllowed,
  realPathOf,
  secretEnvEntries,
  type JsonSchema,
  type Options,
} from 'sluice/sdk';
import { parseSecretsDir } from './config.js';
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
/** The shortest start of a secret cut out when it ends where a shortened echo ends (`...`, `…`, end of text). */
const MIN_PREFIX_LENGTH = 4;
/** What a shortened echo ends with: describeValue's `...` (and the single-character ellipsis). */
const ELLIPSES = ['...', '\u2026'];
/** The largest file a `file:` reference may name. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

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

/**
 * A copy with every secret shown as callers see it: sealed values as `shown`, URL passwords masked, options
 * the schema (when given) marks writeOnly as `***`; references as written.
 */
export function maskOptions(options: Options, schema?: JsonSchema): Options {
  return mapValues(
    options,
    schema,
    (v, s) =>
      isSealed(v)
        ? v.shown
        : isSecretRef(v)
          ? v
          : s?.writeOnly === true && v !== undefined && v !== null
            ? MASK
            : typeof v === 'string'
              ? (maskUrlPassword(v) ?? v)
              : v,
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

/** JSON with object keys sorted, so that two option objects compare equal whatever order their keys came in. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    isObject(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, x[k]]),
        )
      : x,
  );
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
   * the stored secret at the same place, so a client that read the group can send it back unchanged; but only
   * where the secret still goes where it went (docs/security.md, "Sent back masked"):
   * - a URL with `***` as its password keeps the stored password only when its scheme, user, host, port, query
   *   and fragment are those of the stored URL (only the path, the database, may change);
   * - a writeOnly option sent as `***` keeps the stored secret only when every other option of the same end
   *   (secrets aside) is unchanged: any of them may say where the secret is sent (brokers, ssl, mechanism…).
   * Otherwise INVALID_ARGUMENT naming the option (`field`.path): the secret must be sent again.
   */
  restore(sent: Options, stored: Options | undefined, field = 'options'): Options {
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
    const isWriteOnlySecret = (old: unknown): boolean => isSealed(old) && old.shown === MASK;
    const refuse = (at: string, why: string) =>
      new SluiceError(
        ERROR_CODES.INVALID_ARGUMENT,
        `${field}.${at}: the stored secret is kept only when sent back masked (***) to where it went; ${why}: send the secret again`,
        { field: `${field}.${at}`, expected: 'the secret itself, or *** with what says where it is sent unchanged' },
      );
    // Both ends as callers see them, writeOnly secrets as *** whatever was sent in their place: equal when
    // nothing but secrets changed.
    let unchanged: boolean | undefined;
    const othersUnchanged = () =>
      (unchanged ??=
        stableJson(maskOptions(stored)) ===
        stableJson(
          mapValues(
            sent,
            undefined,
            (v, _s, at) =>
              isWriteOnlySecret(storedAt(at)) ? MASK : typeof v === 'string' ? (maskUrlPassword(v) ?? v) : v,
            '',
            0,
          ),
        ));
    return mapValues(
      sent,
      undefined,
      (v, _s, at) => {
        if (typeof v !== 'string' || !v.includes(MASK)) return v;
        const old = storedAt(at);
        if (!isSealed(old)) return v;
        if (isWriteOnlySecret(old)) {
          if (v !== MASK) return v;
          if (!othersUnchanged()) throw refuse(at, 'other options of this connector changed');
          return old;
        }
        if (v === MASK || v === old.shown) return old; // the stored URL whole: it goes where it went
        // A URL sent back with its password masked but something else changed: the stored password goes only
        // to the same scheme, user, host, port and query (only the path, the database, may differ).
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return v;
        }
        if (url.password !== MASK) return v;
        let before: URL;
        try {
          const plain = JSON.parse(this.#box.open(old.$sealed)) as unknown;
          if (typeof plain !== 'string') return v;
          before = new URL(plain);
        } catch {
          return v;
        }
        const same = (['protocol', 'username', 'hostname', 'port', 'search', 'hash'] as const).every(
          (k) => url[k] === before[k],
        );
        if (!same) throw refuse(at, "the URL's scheme, user, host, port or query changed");
        url.password = before.password;
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

/** The password of a URL that has one (as written, and decoded), or nothing. */
function urlPasswords(text: string): string[] {
  if (!text.includes('@') || !text.includes(':')) return [];
  try {
    const { password } = new URL(text);
    if (password === '') return [];
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      // not percent-encoded text: as written only
    }
    return [password, decoded];
  } catch {
    return [];
  }
}

/**
 * `text` with every secret replaced by `***`, in each form a message may carry it:
 * - the value as it is and JSON-escaped (as describeValue and JSON texts quote it); for a URL with a password,
 *   the password too (as written and decoded);
 * - a start of any of these (for a URL: of its password) of at least MIN_PREFIX_LENGTH characters that ends
 *   right before `...` or `…` or at the end of the text, which is what an echo shortened by describeValue (its
 *   first 117 characters and `...`) or cut at the end shows.
 * Forms shorter than MIN_SCRUB_LENGTH are left (a 1-character password would cut every message).
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  const whole = new Set<string>();
  const starts = new Set<string>();
  const json = (s: string) => JSON.stringify(s).slice(1, -1);
  for (const s of secrets) {
    if (s.length === 0) continue;
    const passwords = urlPasswords(s).filter((p) => p.length >= MIN_SCRUB_LENGTH);
    for (const form of [s, ...passwords]) for (const f of [form, json(form)]) whole.add(f);
    // A URL's start up to its password says nothing secret: only the password's starts are cut.
    for (const form of passwords.length > 0 ? passwords : [s])
      for (const f of [form, json(form)]) if (f.length > MIN_PREFIX_LENGTH) starts.add(f);
  }
  let out = text;
  for (const s of [...whole].sort((a, b) => b.length - a.length)) out = out.split(s).join(MASK);
  // Each place a form's first MIN_PREFIX_LENGTH characters appear, followed as far as the form goes: cut up to
  // the farthest point along it where a shortened echo may end.
  const endsEcho = (at: number) => at === out.length || ELLIPSES.some((e) => out.startsWith(e, at));
  const cuts: [start: number, end: number][] = [];
  for (const f of starts) {
    const head = f.slice(0, MIN_PREFIX_LENGTH);
    for (let i = out.indexOf(head); i >= 0; i = out.indexOf(head, i + 1)) {
      let end = -1;
      for (let l = MIN_PREFIX_LENGTH; ; l++) {
        if (endsEcho(i + l)) end = i + l;
        if (l >= f.length || i + l >= out.length || out.charCodeAt(i + l) !== f.charCodeAt(l)) break;
      }
      if (end >= 0) cuts.push([i, end]);
    }
  }
  // Overlapping cuts as one, then made from the last so that each leaves what lies before it in place.
  const merged: [number, number][] = [];
  for (const [start, end] of cuts.sort((a, b) => a[0] - b[0])) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  for (const [start, end] of merged.reverse()) out = `${out.slice(0, start)}${MASK}${out.slice(end)}`;
  return out;
}

/** Where secret references may point, read from the service's environment (the settings of config.ts). */
interface RefPolicy {
  /** The environment references read from; the SDK's isSecretEnvAllowed says which of its variables they may name. */
  readonly vars: NodeJS.ProcessEnv;
  /** SLUICE_SECRET_ENV entries (`NAME`, `PREFIX*`), for messages; none when the setting cannot be read. */
  readonly env: readonly string[];
  /** SLUICE_SECRETS_DIR; undefined: no file references. */
  readonly dir?: string;
  /** Files a reference never reads even inside the folder: the data folder, the files of Sluice's settings. */
  readonly denied: readonly string[];
}

function refPolicy(env: NodeJS.ProcessEnv): RefPolicy {
  let dir: string | undefined;
  try {
    dir = parseSecretsDir(env.SLUICE_SECRETS_DIR ?? '');
  } catch {
    dir = undefined;
  }
  const denied = [
    env.SLUICE_DATA_DIR || '.sluice',
    env.SLUICE_AUTH_TOKENS_FILE,
    env.SLUICE_TLS_KEY,
    env.SLUICE_PLUGIN_SETTINGS_FILE,
  ].flatMap((p) => (p ? [realPathOf(p)] : []));
  return { vars: env, env: secretEnvEntries(env), ...(dir ? { dir } : {}), denied };
}

/** True when p lies strictly inside dir (both real paths). */
function strictlyInside(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** True when the real path is inside the folder and is none of the denied ones (nor inside a denied folder). */
function fileAllowed(real: string, policy: RefPolicy): boolean {
  if (!policy.dir) return false;
  let dir: string;
  try {
    dir = realpathSync(policy.dir);
  } catch {
    return false;
  }
  return strictlyInside(dir, real) && !policy.denied.some((d) => d === real || strictlyInside(d, real));
}

/** What a reference may be, for messages: the settings and their values, never what a reference points to. */
function allowedRefs(policy: RefPolicy): string {
  const env =
    policy.env.length > 0
      ? `env:NAME with NAME allowed by SLUICE_SECRET_ENV (${policy.env.join(',')}; never a Sluice setting)`
      : 'no env:NAME (SLUICE_SECRET_ENV is none)';
  const file = policy.dir
    ? `file:/path of a file inside SLUICE_SECRETS_DIR (${policy.dir}; symlinks resolved)`
    : 'no file:/path (SLUICE_SECRETS_DIR is unset)';
  return `${env}, or ${file}`;
}

/**
 * The options with every `{"secretRef": …}` replaced by the value it points to: `env:NAME` reads the
 * service's environment, `file:/path` a file (one trailing newline dropped), each only where SLUICE_SECRET_ENV
 * and SLUICE_SECRETS_DIR allow (checked again here: the settings may have changed since the group was made).
 * Called only when a job runs; the value is never stored. A reference that is not allowed or cannot be read is
 * FAILED_PRECONDITION naming the option and the reference, never what it points to.
 */
export async function resolveSecretRefs(
  options: Options,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ options: Options; values: string[] }> {
  const refs = secretRefs(options);
  if (refs.length === 0) return { options, values: [] };
  const policy = refPolicy(env);
  const values = new Map<string, string>();
  const fail = (at: string, ref: string, why: string) =>
    new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `option '${at}': secret reference '${ref}' ${why}`, {
      field: `options.${at}`,
    });
  for (const [at, ref] of refs) {
    const problem = checkSecretRef(ref, env, policy);
    if (problem) throw fail(at, ref, `is not allowed: expected ${problem}`);
    if (ref.startsWith('env:')) {
      const value = env[ref.slice(4)];
      if (value === undefined) throw fail(at, ref, 'names a variable the service process does not have');
      values.set(at, value);
    } else {
      values.set(at, await readSecretFile(ref.slice(5), policy, (why) => fail(at, ref, why)));
    }
  }
  return {
    options: mapValues(options, undefined, (v, _s, at) => (isSecretRef(v) ? values.get(at) : v), '', 0) as Options,
    values: [...values.values()].filter((v) => v.length >= MIN_SCRUB_LENGTH),
  };
}

/**
 * A file inside SLUICE_SECRETS_DIR: its real path checked, then opened without following a symlink put in its
 * place meanwhile; a regular file of at most MAX_SECRET_FILE_BYTES, one trailing newline dropped.
 */
async function readSecretFile(path: string, policy: RefPolicy, fail: (why: string) => Error): Promise<string> {
  let real: string;
  try {
    real = await realpath(resolve(path));
  } catch (err) {
    throw fail(`names a file the service cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!fileAllowed(real, policy)) throw fail(`is not allowed: expected ${allowedRefs(policy)}`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(real, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fail(`names a file the service cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw fail('names something that is not a regular file');
    if (stat.size > MAX_SECRET_FILE_BYTES) throw fail(`names a file larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    return (await handle.readFile('utf8')).replace(/\r?\n$/, '');
  } finally {
    await handle.close();
  }
}

/**
 * A problem with a secret reference, for validation (what is allowed, as a phrase after "expected"); undefined
 * when it is `env:NAME` with NAME allowed by SLUICE_SECRET_ENV and not a Sluice setting, or `file:/path` inside
 * SLUICE_SECRETS_DIR once symlinks and `..` are resolved (the file need not exist yet).
 */
export function checkSecretRef(
  ref: string,
  env: NodeJS.ProcessEnv = process.env,
  policy: RefPolicy = refPolicy(env),
): string | undefined {
  const name = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref)?.[1];
  if (name !== undefined && isSecretEnvAllowed(name, policy.vars)) return undefined;
  if (/^file:\//.test(ref) && fileAllowed(realPathOf(ref.slice(5)), policy)) return undefined;
  return allowedRefs(policy);
}

/** A key for tests and for services built without one: the same in the whole process, so replicas in one process agree. */
let processKey: Buffer | undefined;
export function processSecretBox(): SecretBox {
  processKey ??= randomBytes(32);
  return new SecretBox(processKey);
}
