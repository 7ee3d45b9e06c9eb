import { describeValue, type FieldError, type JsonSchema, type Options } from 'sluice/sdk';
import { MASK, maskOptions, scrubSecrets } from '../../core/option-secrets.js';

/** Secrets shorter than this are not cut out of free text (a 1-character password would cut every message). */
const MIN_SCRUB_LENGTH = 3;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every value the masked copy shows differently (a writeOnly value, a URL or its password), in clear. */
function secretValues(plain: unknown, masked: unknown, out: string[], depth = 0): string[] {
  if (depth > 32) return out;
  if (isObject(plain) && isObject(masked)) {
    for (const [k, v] of Object.entries(plain)) secretValues(v, masked[k], out, depth + 1);
  } else if (Array.isArray(plain) && Array.isArray(masked)) {
    plain.forEach((v, i) => secretValues(v, masked[i], out, depth + 1));
  } else if (JSON.stringify(plain) !== JSON.stringify(masked)) {
    if (typeof plain === 'string') {
      out.push(plain, JSON.stringify(plain).slice(1, -1));
      try {
        const url = new URL(plain);
        if (url.password) out.push(url.password, decodeURIComponent(url.password));
      } catch {
        // not a URL: the value itself is the secret
      }
    } else if (plain !== undefined && plain !== null) out.push(JSON.stringify(plain));
  }
  return out;
}

/** The value at a field error's path (`options.sasl.password`, `options.hosts[1]`), or undefined. */
function valueAt(root: unknown, path: string): unknown {
  const parts = path.split('.');
  if (parts.shift() !== 'options') return undefined;
  let cur: unknown = root;
  for (const part of parts) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) return undefined;
    cur = isObject(cur) ? cur[m[1]!] : undefined;
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) cur = Array.isArray(cur) ? cur[Number(idx[1])] : undefined;
  }
  return cur;
}

/**
 * The field errors with every secret of the options cut out: what an error echoes of a value (its `received`)
 * is described from the masked options (writeOnly options as `***`, URL passwords masked), so a secret that
 * describeValue would shorten cannot leak in part either; the free text of a connector's own messages has
 * the secrets in clear replaced by `***`.
 */
export function maskFieldErrors(
  errors: readonly FieldError[],
  options: Options,
  schema: JsonSchema | undefined,
): FieldError[] {
  const masked = maskOptions(options, schema);
  const secrets = secretValues(options, masked, []).filter((s) => s.length >= MIN_SCRUB_LENGTH && s !== MASK);
  if (secrets.length === 0 && JSON.stringify(masked) === JSON.stringify(options)) return [...errors];
  return errors.map((e) => {
    let { received, message } = e;
    const plainValue = valueAt(options, e.path);
    const shown = valueAt(masked, e.path);
    if (plainValue !== undefined && JSON.stringify(plainValue) !== JSON.stringify(shown)) {
      const got = describeValue(shown);
      message = message.split(received).join(got);
      received = got;
    }
    return { ...e, received: scrubSecrets(received, secrets), message: scrubSecrets(message, secrets) };
  });
}
