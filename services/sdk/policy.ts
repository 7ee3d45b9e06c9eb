import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { type FieldError, fieldError } from './errors.js';

/**
 * What the host lets connectors touch, set once by the host at start (SLUICE_FILE_ROOTS,
 * SLUICE_ALLOWED_HOSTS). Kept under a global symbol so that a plugin bundling its own copy of this SDK
 * sees the same policy.
 */
export interface HostPolicy {
  /** Absolute folders files may be written under; nothing outside them, symlinks resolved. */
  readonly fileRoots: readonly string[];
  /** Hosts connectors may connect to; undefined: any. */
  readonly allowedHosts?: readonly string[];
}

const KEY = Symbol.for('sluice.hostPolicy');
type Holder = { [KEY]?: HostPolicy };

export function setHostPolicy(policy: HostPolicy): void {
  (globalThis as Holder)[KEY] = { ...policy, fileRoots: policy.fileRoots.map((r) => resolve(r)) };
}

/** The policy the host set; before that, the same defaults the host uses (SLUICE_FILE_ROOTS or <SLUICE_DATA_DIR>/files). */
export function hostPolicy(): HostPolicy {
  const set = (globalThis as Holder)[KEY];
  if (set) return set;
  const roots = process.env.SLUICE_FILE_ROOTS || join(process.env.SLUICE_DATA_DIR || '.sluice', 'files');
  return {
    fileRoots: roots
      .split(':')
      .filter((r) => r !== '')
      .map((r) => resolve(r)),
  };
}

/**
 * The real path of `p`, which need not exist yet: its longest existing ancestor with symlinks resolved, plus the
 * rest as written. For checks that a path lies inside a folder, as the host's file roots are checked.
 */
export function realPathOf(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail);
    } catch {
      const parent = dirname(head);
      if (parent === head) return join(head, ...tail);
      tail.unshift(head.slice(parent.length).replace(/^[\\/]/, ''));
      head = parent;
    }
  }
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(`..${sep}`));
}

/**
 * A field error when `path` (absolute) is not under one of the file roots once symlinks are resolved,
 * or undefined when it is. The message names the roots, never what lies at the path.
 */
export function checkUnderFileRoots(path: string, field: string): FieldError | undefined {
  const { fileRoots } = hostPolicy();
  const real = realPathOf(path);
  if (fileRoots.some((root) => inside(realPathOf(root), real))) return undefined;
  return fieldError(field, `a path under the file roots (SLUICE_FILE_ROOTS: ${fileRoots.join(':')})`, path);
}

/** A field error when connecting to `host` is not allowed by SLUICE_ALLOWED_HOSTS, or undefined. */
export function checkAllowedHost(host: string, field: string, port?: number): FieldError | undefined {
  const { allowedHosts } = hostPolicy();
  if (!allowedHosts) return undefined;
  const h = host.toLowerCase();
  const ok = allowedHosts.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('unix:')) return h === e.slice(5) || h === e;
    if (h.startsWith('/')) return false; // a unix socket needs its own unix:/path entry
    const [eh, ep] = e.startsWith('[') ? [e.slice(0, e.indexOf(']') + 1), e.split(']:')[1]] : e.split(':');
    if (ep !== undefined && port !== undefined && String(port) !== ep) return false;
    if (eh!.startsWith('*.')) return h.endsWith(eh!.slice(1));
    return h === eh;
  });
  return ok
    ? undefined
    : fieldError(field, `a host allowed by SLUICE_ALLOWED_HOSTS (${allowedHosts.join(', ')})`, host);
}
