import { createHash, timingSafeEqual } from 'node:crypto';
import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/** What a caller may do: `viewer` reads, `operator` also creates, approves, runs, cancels and fires, `admin` all. */
export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const RANK: Readonly<Record<Role, number>> = { viewer: 0, operator: 1, admin: 2 };

/** Shorter tokens are refused at start-up: a guessable token is no token. */
export const MIN_TOKEN_LENGTH = 16;

/** Methods (by name, whatever the service) an `operator` token may call; reads are open to `viewer`. */
const OPERATOR_METHODS = new Set([
  'CreateGroup',
  'UpdateGroup',
  'ApproveGroup',
  'SubmitOfflineJob',
  'CancelJob',
  'TriggerWindow',
  'Backfill',
  'FireDue',
  'PauseSchedule',
  'ResumeSchedule',
]);
const READ_METHOD = /^(Get|List|Preview|Watch|Validate|Resolve)[A-Z]/;

/** The least role a gRPC method (`/pkg.Service/Method`) needs; anything not named above is `admin`. */
export function roleFor(path: string): Role | 'open' {
  if (path.startsWith('/grpc.health.v1.Health/')) return 'open';
  if (path.startsWith('/grpc.reflection.')) return 'viewer';
  const method = path.slice(path.lastIndexOf('/') + 1);
  if (READ_METHOD.test(method)) return 'viewer';
  if (OPERATOR_METHODS.has(method)) return 'operator';
  return 'admin';
}

/** An entry of a token list, for error messages: the token itself never appears. */
function entryName(source: string, index: number): string {
  return `${source} entry ${index + 1}`;
}

/**
 * Parses `token:role` entries (separated by commas or new lines; `#` starts a comment line).
 * Throws naming the variable and the entry, never echoing the token.
 */
export function parseTokens(text: string, source: string): Map<string, Role> {
  const tokens = new Map<string, Role>();
  const entries = text
    .split(/[\n,]/)
    .map((e) => e.trim())
    .filter((e) => e !== '' && !e.startsWith('#'));
  entries.forEach((entry, i) => {
    const at = entry.lastIndexOf(':');
    const token = at < 0 ? entry : entry.slice(0, at);
    const role = at < 0 ? '' : entry.slice(at + 1).trim();
    if (!ROLES.includes(role as Role))
      throw new Error(
        `${entryName(source, i)}: expected token:role with role admin, operator or viewer, got role ${JSON.stringify(role)}`,
      );
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
      throw new Error(
        `${entryName(source, i)}: expected a token of at least ${MIN_TOKEN_LENGTH} characters without spaces, got ${token.length} characters`,
      );
    tokens.set(token, role as Role);
  });
  return tokens;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

/**
 * Names the bearer token of an `Authorization` value for the ledger and logs without revealing it: `token:`
 * and the first 12 hex digits of its SHA-256. Undefined when no bearer token came.
 */
export function tokenFingerprint(authorization: string | undefined): string | undefined {
  const m = /^Bearer (\S+)$/i.exec(authorization ?? '');
  return m ? `token:${digest(m[1]!).toString('hex').slice(0, 12)}` : undefined;
}

/**
 * Checks bearer tokens in one place for every entry point (gRPC and HTTP). Tokens are compared as
 * SHA-256 digests in constant time, against every known token, so neither a token's length nor how
 * much of it matched shows in the answer time.
 */
export class Authenticator {
  readonly #tokens: { digest: Buffer; role: Role }[];
  /** Clients presenting a certificate the configured client CA signed are accepted as this role. */
  readonly #certificateRole: Role | undefined;

  constructor(tokens: ReadonlyMap<string, Role>, options: { certificateRole?: Role } = {}) {
    this.#tokens = [...tokens].map(([token, role]) => ({ digest: digest(token), role }));
    this.#certificateRole = options.certificateRole;
  }

  /** True when some credential is configured: calls must then prove who they are. */
  get enabled(): boolean {
    return this.#tokens.length > 0 || this.#certificateRole !== undefined;
  }

  /** The role of an `Authorization: Bearer <token>` value, or undefined. */
  roleOf(authorization: string | undefined): Role | undefined {
    const m = /^Bearer (\S+)$/i.exec(authorization ?? '');
    if (!m) return undefined;
    const presented = digest(m[1]!);
    let found: Role | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(t.digest, presented)) found ??= t.role;
    return found;
  }

  /**
   * Throws UNAUTHENTICATED when no valid credential came and PERMISSION_DENIED when its role is too
   * low; returns the caller's role. With no credential configured, every caller is `admin`.
   */
  authorize(needed: Role | 'open', authorization: string | undefined, verifiedCertificate = false): Role {
    if (!this.enabled || needed === 'open') return 'admin';
    const role =
      this.roleOf(authorization) ??
      (verifiedCertificate && this.#certificateRole !== undefined ? this.#certificateRole : undefined);
    if (role === undefined)
      throw new SluiceError(
        ERROR_CODES.UNAUTHENTICATED,
        'a valid bearer token is required (authorization: Bearer <token>)',
      );
    if (RANK[role] < RANK[needed])
      throw new SluiceError(ERROR_CODES.PERMISSION_DENIED, `this call needs the ${needed} role; the token is ${role}`);
    return role;
  }
}
