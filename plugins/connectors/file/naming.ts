import { createHash, randomBytes } from 'node:crypto';
import { type FieldError, type WindowRef, fieldError, invalidArgument } from 'sluice/sdk';

/** The default file name: one file per window, named after the stream and the window's bounds. */
export const DEFAULT_FILE_NAME = '{groupId}-{streamId}-{lower}-{upper}.{ext}';

/** Placeholders a fileName template may use, with what each becomes. */
export const PLACEHOLDERS = {
  groupId: 'the group (sync task) id',
  streamId: 'the stream id',
  lower: "the window's lower bound (epoch ms for TIME windows, the connector's position for OFFSET windows)",
  upper: "the window's upper bound",
  type: 'the boundary type in lower case: time or offset',
  ext: 'the format extension: jsonl or csv',
} as const;

export type Placeholder = keyof typeof PLACEHOLDERS;

/** The longest file name most file systems accept, in bytes. */
const MAX_NAME_BYTES = 255;
/** Substituted values longer than this are replaced by a hash when the whole name would be too long. */
const HASH_ABOVE = 24;
const TOKEN = /\{([^{}]*)\}/g;

/**
 * Problems with a fileName template: unknown or unbalanced placeholders, a missing window bound
 * ({lower} and {upper} keep one file per window), path separators, or a leading dot (reserved for the
 * writer's temporary files).
 */
export function checkTemplate(template: string, path = 'options.fileName'): FieldError[] {
  const errors: FieldError[] = [];
  const used = new Set<string>();
  for (const m of template.matchAll(TOKEN)) used.add(m[1]!);
  const unknown = [...used].filter((p) => !(p in PLACEHOLDERS));
  if (unknown.length > 0) {
    errors.push(
      fieldError(
        path,
        `only the placeholders ${Object.keys(PLACEHOLDERS)
          .map((p) => `{${p}}`)
          .join(', ')} (unknown: ${unknown.map((p) => `{${p}}`).join(', ')})`,
        template,
      ),
    );
  }
  if (/[{}]/.test(template.replace(TOKEN, ''))) {
    errors.push(fieldError(path, 'balanced braces: every "{" closes a placeholder', template));
  }
  if (!used.has('lower') || !used.has('upper')) {
    errors.push(
      fieldError(path, 'a template holding both {lower} and {upper}, so that each window has its own file', template),
    );
  }
  if (/[/\\\u0000-\u001f]/.test(template)) {
    errors.push(
      fieldError(path, 'a file name without path separators or control characters (put directories in path)', template),
    );
  }
  if (template.startsWith('.')) {
    errors.push(
      fieldError(path, 'a name that does not start with "." (hidden names are the temporary files)', template),
    );
  }
  return errors;
}

/**
 * A value made safe for a file name, injectively: letters, digits, `_`, `-` and `.` stay; anything else
 * (`:`, `,`, `/`, spaces, non-ASCII) is percent-encoded as UTF-8, and so is a leading `.`. So `0:10,1:12`
 * becomes `0%3A10%2C1%3A12`, and two different bounds never share a file.
 */
export function sanitize(value: string): string {
  let out = '';
  for (const ch of value) {
    if (/[A-Za-z0-9_.-]/.test(ch) && !(ch === '.' && out === '')) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

const shortHash = (value: string) => `h${createHash('sha256').update(value).digest('hex').slice(0, 20)}`;

function render(template: string, values: Readonly<Record<Placeholder, string>>): string {
  return template.replace(TOKEN, (_, name: string) => values[name as Placeholder]);
}

/**
 * The file name of a window: the template with every placeholder replaced by its sanitized value.
 * When the name would exceed 255 bytes (an OFFSET window over many partitions), every value longer
 * than 24 characters is replaced by `h` and 20 hex digits of its SHA-256, deterministically, so a
 * re-run of the window still finds its file. Throws INVALID_ARGUMENT when even that is too long.
 */
export function windowFileName(template: string, window: WindowRef, ext: string): string {
  const raw: Record<Placeholder, string> = {
    groupId: window.groupId,
    streamId: window.streamId,
    lower: window.boundaries.lowerBound,
    upper: window.boundaries.upperBound,
    type: window.boundaries.boundaryType.toLowerCase(),
    ext,
  };
  const safe = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, sanitize(v)])) as Record<Placeholder, string>;
  let name = render(template, safe);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    const hashed = Object.fromEntries(
      Object.entries(safe).map(([k, v]) => [k, v.length > HASH_ABOVE ? shortHash(v) : v]),
    ) as Record<Placeholder, string>;
    name = render(template, hashed);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw invalidArgument('options.fileName', `a template whose file names fit in ${MAX_NAME_BYTES} bytes`, name);
  }
  return name;
}

/** Hex digits of the random part of a temporary file's name. */
const TEMP_RANDOM_HEX = 8;

/**
 * What every temporary file of a window's job starts with: `.<file>.<jobId>.`. Dots in the job id are
 * percent-encoded, so the name splits unambiguously from the right and one window's files never match
 * another window's prefix. Hashed, like windowFileName, when a whole name would exceed 255 bytes.
 */
export function tempFilePrefix(finalName: string, jobId: string): string {
  const prefix = `.${finalName}.${sanitize(jobId).replaceAll('.', '%2E')}.`;
  return Buffer.byteLength(prefix) + TEMP_RANDOM_HEX + '.tmp'.length <= MAX_NAME_BYTES
    ? prefix
    : `.${shortHash(finalName)}.${shortHash(jobId)}.`;
}

/**
 * The temporary file a writer writes before commit: hidden, in the same directory (so the rename is
 * atomic), and its own (`.<file>.<jobId>.<random>.tmp`): a re-run of a job may open the window while
 * a cancelled run's write is still in flight, and a shared file would mix the two runs' rows.
 */
export function tempFileName(finalName: string, jobId: string): string {
  return `${tempFilePrefix(finalName, jobId)}${randomBytes(TEMP_RANDOM_HEX / 2).toString('hex')}.tmp`;
}

/** Whether a name is a temporary file of the window's job, as tempFileName writes them. */
export function isJobTempFile(name: string, finalName: string, jobId: string): boolean {
  const prefix = tempFilePrefix(finalName, jobId);
  return name.startsWith(prefix) && /^[0-9a-f]{8}\.tmp$/.test(name.slice(prefix.length));
}

/**
 * The ownership record of a window file: hidden, beside it (`.<name>.sluice`), naming the files (by
 * device and inode) that Sluice wrote under that name; see ownership.ts.
 */
export function ownershipFileName(finalName: string): string {
  const name = `.${finalName}.sluice`;
  return Buffer.byteLength(name) <= MAX_NAME_BYTES ? name : `.${shortHash(finalName)}.sluice`;
}
