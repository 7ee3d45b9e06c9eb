import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Who made a request on the HTTP server: a bearer token, or an InLong user (on InLong's path only). */
export type Principal = { readonly kind: 'token' } | { readonly kind: 'inlong-user'; readonly user: string };

export interface CallbackCredentials {
  /** The bearer token (SLUICE_CALLBACK_TOKEN); absent: no bearer token is accepted. */
  readonly token?: string;
  /** InLong users (SLUICE_CALLBACK_INLONG_USERS): user → password; they have the operator role on InLong's path. */
  readonly inlongUsers?: ReadonlyMap<string, string>;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function checkUser(
  users: ReadonlyMap<string, string> | undefined,
  user: string,
  password: string,
): Principal | undefined {
  const expected = users?.get(user);
  // Compare even for an unknown user, so the answer takes as long whether or not the user exists.
  const ok = same(password, expected ?? `\u0000${password}`);
  return ok && expected !== undefined ? { kind: 'inlong-user', user } : undefined;
}

/**
 * Checks a request's credentials. A bearer token is accepted on every path; InLong's credentials
 * (`username`/`password` in the query, as InLong's Airflow DAG, DolphinScheduler task and manager
 * client send them, or HTTP Basic) only when `inlongPath` is true. Undefined: not authenticated.
 * This is the only place that reads credentials, so that general token/role auth can take it over.
 */
export function authenticate(
  credentials: CallbackCredentials,
  headers: IncomingHttpHeaders,
  query: URLSearchParams,
  inlongPath: boolean,
): Principal | undefined {
  const authorization = headers.authorization ?? '';
  if (credentials.token !== undefined && /^Bearer /i.test(authorization))
    return same(authorization.slice(7), credentials.token) ? { kind: 'token' } : undefined;
  if (!inlongPath) return undefined;
  if (/^Basic /i.test(authorization)) {
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    return at > 0 ? checkUser(credentials.inlongUsers, decoded.slice(0, at), decoded.slice(at + 1)) : undefined;
  }
  const user = query.get('username');
  const password = query.get('password');
  if (user !== null && password !== null) return checkUser(credentials.inlongUsers, user, password);
  return undefined;
}

/** The principal's name as the ledger and logs record it (never a credential). */
export function principalName(p: Principal): string {
  return p.kind === 'token' ? 'token' : `inlong:${p.user}`;
}
