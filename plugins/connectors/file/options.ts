import { isAbsolute } from 'node:path';
import {
  checkUnderFileRoots,
  type FieldError,
  type JsonSchema,
  type Options,
  applyDefaults,
  fieldError,
  invalidFields,
  validateAgainstSchema,
} from 'sluice/sdk';
import { DEFAULT_FILE_NAME, PLACEHOLDERS, checkTemplate } from './naming.js';

export type FileFormat = 'jsonl' | 'csv';

const placeholderList = Object.entries(PLACEHOLDERS)
  .map(([name, meaning]) => `{${name}}: ${meaning}`)
  .join('; ');

export const SINK_OPTIONS: JsonSchema = {
  type: 'object',
  required: ['path'],
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      description:
        'Absolute path of the directory the window files are written to. Created (with its parents) when missing.',
      examples: ['/var/lib/sluice/out'],
    },
    format: {
      type: 'string',
      enum: ['jsonl', 'csv'],
      default: 'jsonl',
      description:
        'jsonl: one JSON object per line. csv: RFC 4180 (fields with quotes, commas or line breaks are quoted, CRLF between records).',
    },
    fileName: {
      type: 'string',
      minLength: 1,
      default: DEFAULT_FILE_NAME,
      description: `Name of a window's file inside path. Must hold {lower} and {upper}; no "/" and no leading ".". Placeholders: ${placeholderList}. Values are made file-name safe: characters other than letters, digits, "_", "-" and "." are percent-encoded (a bound "0:10,1:12" becomes "0%3A10%2C1%3A12").`,
    },
    csvHeader: {
      type: 'boolean',
      default: true,
      description: 'csv only: write the column names as the first record.',
    },
    columns: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description:
        "csv only: the columns and their order; keys a row has beyond them are not written. Without it, the first row's keys are the columns and a later row with another key fails the write.",
      examples: [['id', 'ts', 'name']],
    },
  },
};

/** The sink options with their defaults, typed. */
export interface FileSinkConfig {
  readonly path: string;
  readonly format: FileFormat;
  readonly fileName: string;
  readonly csvHeader: boolean;
  readonly columns?: readonly string[];
}

/** The checks beyond the schema: an absolute path, a usable template, columns that fit the format. */
export function checkOptions(options: Options): FieldError[] {
  const errors: FieldError[] = [];
  const path = options.path;
  if (typeof path === 'string' && path !== '' && !isAbsolute(path)) {
    errors.push(
      fieldError(
        'options.path',
        'an absolute directory path (a relative one would depend on where the service runs)',
        path,
      ),
    );
  }
  if (typeof path === 'string' && path.includes('\u0000')) {
    errors.push(fieldError('options.path', 'a path without NUL characters', path));
  }
  if (typeof path === 'string' && isAbsolute(path) && !path.includes('\u0000')) {
    const outside = checkUnderFileRoots(path, 'options.path');
    if (outside) errors.push(outside);
  }
  if (typeof options.fileName === 'string') errors.push(...checkTemplate(options.fileName));
  const columns = options.columns;
  if (Array.isArray(columns)) {
    if ((options.format ?? 'jsonl') !== 'csv') {
      errors.push(
        fieldError(
          'options.columns',
          'no columns unless format is "csv" (JSON lines keep every key of a row)',
          columns,
        ),
      );
    }
    if (columns.length === 0) errors.push(fieldError('options.columns', 'at least one column', columns));
    const seen = new Set<unknown>();
    const dup = columns.filter((c) => (seen.has(c) ? true : (seen.add(c), false)));
    if (dup.length > 0)
      errors.push(
        fieldError('options.columns', `each column once (repeated: ${[...new Set(dup)].join(', ')})`, columns),
      );
  }
  return errors;
}

/**
 * The options as the writer uses them: schema and own checks applied, defaults filled in. Throws
 * INVALID_ARGUMENT with every field error, so a writer never starts on options it cannot honour.
 */
export function resolveConfig(options: Options): FileSinkConfig {
  const errors = validateAgainstSchema(SINK_OPTIONS, options, 'options');
  if (errors.length === 0) errors.push(...checkOptions(applyDefaults(SINK_OPTIONS, options)));
  if (errors.length > 0) throw invalidFields(errors, 'options of the file sink are invalid');
  const o = applyDefaults(SINK_OPTIONS, options);
  return {
    path: o.path as string,
    format: o.format as FileFormat,
    fileName: o.fileName as string,
    csvHeader: o.csvHeader as boolean,
    ...(Array.isArray(o.columns) ? { columns: [...(o.columns as string[])] } : {}),
  };
}
