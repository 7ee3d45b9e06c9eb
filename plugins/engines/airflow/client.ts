import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/** Refresh a JWT this long before it expires. */
export const TOKEN_REFRESH_MARGIN_MS = 60_000;
/** Each Airflow request gives up after this long (UNAVAILABLE). */
export const REQUEST_TIMEOUT_MS = 15_000;

export interface AirflowClientOptions {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** Epoch ms; tests drive it. */
  readonly now?: () => number;
}

export interface AirflowResponse {
  readonly status: number;
  readonly body: unknown;
}

/** The seconds-since-epoch `exp` claim of a JWT, in ms; undefined when it has none. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function detail(body: unknown): string {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = (body as { detail: unknown }).detail;
    return typeof d === 'string' ? d : JSON.stringify(d);
  }
  return typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body);
}

/**
 * A small client of Airflow 3's public REST API (`/api/v2`, as in its published OpenAPI spec) with
 * the auth manager's `POST /auth/token`. Hand-written over fetch: the few calls Sluice needs do not
 * justify a generated client, and no maintained TypeScript client of Airflow 3 exists on npm.
 */
export class AirflowClient {
  private readonly base: string;
  private readonly now: () => number;
  private token: { value: string; expiresAt: number } | undefined;

  constructor(private readonly options: AirflowClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.now = options.now ?? Date.now;
  }

  /** An Airflow error as a Sluice error: 5xx and 429 UNAVAILABLE, other answers FAILED_PRECONDITION. */
  static answerError(what: string, res: AirflowResponse): SluiceError {
    const code = res.status >= 500 || res.status === 429 ? ERROR_CODES.UNAVAILABLE : ERROR_CODES.FAILED_PRECONDITION;
    return new SluiceError(code, `Airflow answered ${what} with HTTP ${res.status}: ${detail(res.body)}`);
  }

  private async raw(method: string, path: string, body: unknown, bearer: string | undefined): Promise<AirflowResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `Airflow at ${this.base} cannot be reached (${method} ${path}): ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: keep the text for the error message.
    }
    return { status: res.status, body: parsed };
  }

  /** A JWT, fetched again when none is held or it expires within TOKEN_REFRESH_MARGIN_MS. */
  private async bearer(force = false): Promise<string | undefined> {
    if (this.options.username === undefined) return undefined;
    if (!force && this.token && this.token.expiresAt - TOKEN_REFRESH_MARGIN_MS > this.now()) return this.token.value;
    const res = await this.raw(
      'POST',
      '/auth/token',
      { username: this.options.username, password: this.options.password ?? '' },
      undefined,
    );
    const value = (res.body as { access_token?: unknown } | undefined)?.access_token;
    if ((res.status !== 200 && res.status !== 201) || typeof value !== 'string') {
      // The answer's detail never holds the password; the request body is not echoed.
      throw AirflowClient.answerError('POST /auth/token', res);
    }
    this.token = { value, expiresAt: jwtExpiry(value) ?? Number.POSITIVE_INFINITY };
    return value;
  }

  /** Calls the API with a bearer token; a 401 fetches a new token once and tries again. */
  async call(method: string, path: string, body?: unknown): Promise<AirflowResponse> {
    let res = await this.raw(method, path, body, await this.bearer());
    if (res.status === 401 && this.options.username !== undefined) {
      res = await this.raw(method, path, body, await this.bearer(true));
    }
    return res;
  }

  async version(): Promise<string> {
    const res = await this.call('GET', '/api/v2/version');
    const v = (res.body as { version?: unknown } | undefined)?.version;
    if (res.status !== 200 || typeof v !== 'string') throw AirflowClient.answerError('GET /api/v2/version', res);
    return v;
  }

  /** A Variable's value; undefined when there is no such Variable. */
  async getVariable(key: string): Promise<string | undefined> {
    const path = `/api/v2/variables/${encodeURIComponent(key)}`;
    const res = await this.call('GET', path);
    if (res.status === 404) return undefined;
    const value = (res.body as { value?: unknown } | undefined)?.value;
    if (res.status !== 200 || typeof value !== 'string') throw AirflowClient.answerError(`GET ${path}`, res);
    return value;
  }

  /** Creates or replaces a Variable (value: a string, as Airflow stores it). */
  async putVariable(key: string, value: string, description: string): Promise<void> {
    const path = `/api/v2/variables/${encodeURIComponent(key)}`;
    const got = await this.call('GET', path);
    if (got.status === 200) {
      const res = await this.call('PATCH', path, { key, value, description });
      if (res.status !== 200) throw AirflowClient.answerError(`PATCH ${path}`, res);
    } else if (got.status === 404) {
      const res = await this.call('POST', '/api/v2/variables', { key, value, description });
      if (res.status !== 201) throw AirflowClient.answerError('POST /api/v2/variables', res);
    } else {
      throw AirflowClient.answerError(`GET ${path}`, got);
    }
  }

  /** Deletes a Variable; one already gone is fine. */
  async deleteVariable(key: string): Promise<void> {
    const path = `/api/v2/variables/${encodeURIComponent(key)}`;
    const res = await this.call('DELETE', path);
    if (res.status !== 204 && res.status !== 404) throw AirflowClient.answerError(`DELETE ${path}`, res);
  }

  /** The keys of the Variables whose key contains `pattern`, all pages. */
  async variableKeys(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    const limit = 100;
    for (let offset = 0; ; offset += limit) {
      const path = `/api/v2/variables?variable_key_pattern=${encodeURIComponent(pattern)}&limit=${limit}&offset=${offset}`;
      const res = await this.call('GET', path);
      const page = res.body as { variables?: { key: string }[]; total_entries?: number } | undefined;
      if (res.status !== 200 || !Array.isArray(page?.variables)) throw AirflowClient.answerError(`GET ${path}`, res);
      keys.push(...page.variables.map((v) => v.key));
      if (page.variables.length < limit) return keys;
    }
  }

  /**
   * Pauses or unpauses a DAG. False when Airflow has no such DAG yet (the DAG processor has not parsed
   * the factory's new DAG): the factory creates it unpaused.
   */
  async setPaused(dagId: string, paused: boolean): Promise<boolean> {
    const path = `/api/v2/dags/${encodeURIComponent(dagId)}`;
    const res = await this.call('PATCH', path, { is_paused: paused });
    if (res.status === 404) return false;
    if (res.status !== 200) throw AirflowClient.answerError(`PATCH ${path}`, res);
    return true;
  }

  /** Deletes a DAG and its runs from Airflow's database; one already gone is fine. */
  async deleteDag(dagId: string): Promise<void> {
    const path = `/api/v2/dags/${encodeURIComponent(dagId)}`;
    const res = await this.call('DELETE', path);
    if (res.status !== 200 && res.status !== 204 && res.status !== 404)
      throw AirflowClient.answerError(`DELETE ${path}`, res);
  }

  /** Creates or replaces a Connection (Airflow masks its password in the UI and logs). */
  async putConnection(body: {
    connection_id: string;
    conn_type: string;
    host: string;
    password: string;
    description: string;
  }): Promise<void> {
    const path = `/api/v2/connections/${encodeURIComponent(body.connection_id)}`;
    const got = await this.call('GET', path);
    if (got.status === 200) {
      const res = await this.call('PATCH', path, body);
      if (res.status !== 200) throw AirflowClient.answerError(`PATCH ${path}`, res);
    } else if (got.status === 404) {
      const res = await this.call('POST', '/api/v2/connections', body);
      if (res.status !== 201) throw AirflowClient.answerError('POST /api/v2/connections', res);
    } else {
      throw AirflowClient.answerError(`GET ${path}`, got);
    }
  }
}
