/**
 * A stand-in for Airflow 3's API server, held to the published OpenAPI spec stored in
 * /work/shared/specs/airflow (copied from apache/airflow): every request's path and method must be an
 * operation of the spec, every JSON body must fit the operation's request schema, and every answer
 * this stand-in gives is checked against the spec's response schema for its status. Anything off is
 * recorded in `violations` (tests assert it stays empty). Auth follows the simple auth manager:
 * `POST /auth/token` with `{username, password}` answers 201 `{access_token}` (a JWT with `exp`), and
 * every `/api/v2` call needs `Authorization: Bearer <that token>`.
 *
 * It keeps Variables, Connections and DAGs. DAGs appear only when `parseDags()` plays the DAG
 * processor running Sluice's factory: one DAG per entry of the index Variable `sluice_dags`.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { load } from 'js-yaml';
import { readFileSync, existsSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nextFireTime, parseCron } from '../../services/schedule/domain/cron.js';

export const AIRFLOW_SPEC_PATH =
  process.env.SLUICE_AIRFLOW_SPEC ?? '/work/shared/specs/airflow/v2-rest-api-generated.yaml';
export const airflowSpecPresent = existsSync(AIRFLOW_SPEC_PATH);

interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  security?: unknown[];
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Spec {
  paths: Record<string, Record<string, Operation>>;
}

export interface Call {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly body?: unknown;
}

const TOKEN_SIG = 'stand-in-signature';

function jwt(exp: number, sub: string): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS512', typ: 'JWT' })}.${enc({ sub, exp: Math.floor(exp / 1000) })}.${TOKEN_SIG}`;
}

/** What the stand-in's scheduler needs to tick the DAGs: a clock and the way the factory's task reaches Sluice. */
export interface Ticking {
  now(): number;
  scheduleAt(at: number, fn: () => void): { cancel(): void };
  /** What the factory's task does on a tick: FireDue of the group with the tick as as_of (epoch ms). */
  fireDue(groupId: string, asOf: number): Promise<unknown>;
}

interface DagSpecEntry {
  dagId: string;
  groupId: string;
  cron: string;
  timeZone: string;
  firstDue: number;
  lastDue?: number;
}

/** A failed tick's task is tried again this long after (Airflow's retry_delay), this many times. */
const RETRY_MS = 60_000;
const RETRIES = 3;

export class FakeAirflow {
  readonly variables = new Map<string, { value: string; description: string | null }>();
  readonly connections = new Map<string, Record<string, unknown>>();
  readonly dags = new Map<string, { paused: boolean }>();
  readonly calls: Call[] = [];
  readonly violations: string[] = [];
  /** Tokens issued, with their expiry (epoch ms). */
  readonly tokens = new Map<string, number>();
  tokenTtlMs = 3_600_000;
  now: () => number = Date.now;
  /** While set, every answer is this status with this detail (Airflow failing). */
  failing: { status: number; detail: string } | undefined;
  private server: Server | undefined;
  private readonly spec: Spec;
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(
    readonly username = 'admin',
    readonly password = 'stand-in-password',
  ) {
    this.spec = load(readFileSync(AIRFLOW_SPEC_PATH, 'utf8')) as Spec;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    this.ajv.addSchema(this.spec as object, 'airflow');
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.violations.push(`stand-in failed on ${req.method} ${req.url}: ${String(err)}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: 'stand-in error' }));
      });
    });
    await new Promise<void>((res) => this.server!.listen(0, '127.0.0.1', res));
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
  }

  /** The DAG settings the factory reads: the index Variable's entries (none when it is absent or broken). */
  dagSpecs(): Record<string, DagSpecEntry> {
    try {
      return (JSON.parse(this.variables.get('sluice_dags')?.value ?? '{}') as { dags?: never }).dags ?? {};
    } catch {
      return {};
    }
  }

  /** Plays the DAG processor running Sluice's DAG factory: a DAG per index entry, created unpaused. */
  parseDags(): void {
    for (const spec of Object.values(this.dagSpecs()))
      if (!this.dags.has(spec.dagId)) this.dags.set(spec.dagId, { paused: false });
  }

  /** Ticks run so far: [dagId, tick] in order (failed tries included once per try). */
  readonly ticks: [string, number][] = [];
  private ticking: Ticking | undefined;
  private readonly timers = new Map<string, { cancel(): void; spec: string }>();

  /**
   * Plays Airflow's DAG processor and scheduler together: after every change, the factory's DAGs are
   * parsed from the index, and each unpaused DAG ticks at its cron's fire times in its zone (Sluice's own
   * cron evaluator), from its first to its last due time, each tick calling `fireDue` as the factory's
   * task would; a failed call is tried again like the task's retries.
   */
  startTicking(ticking: Ticking): void {
    this.stopTicking();
    this.ticking = ticking;
    this.replan();
  }

  stopTicking(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.ticking = undefined;
  }

  /** Forgets every object (a fresh Airflow), tokens included. */
  reset(): void {
    this.stopTicking();
    this.variables.clear();
    this.connections.clear();
    this.dags.clear();
    this.tokens.clear();
    this.calls.length = 0;
    this.ticks.length = 0;
  }

  private replan(): void {
    if (!this.ticking) return;
    this.parseDags();
    const specs = new Map(Object.values(this.dagSpecs()).map((s) => [s.dagId, s]));
    for (const [dagId, timer] of this.timers) {
      const spec = specs.get(dagId);
      if (!spec || this.dags.get(dagId)?.paused !== false || JSON.stringify(spec) !== timer.spec) {
        timer.cancel();
        this.timers.delete(dagId);
      }
    }
    for (const spec of specs.values())
      if (!this.timers.has(spec.dagId) && this.dags.get(spec.dagId)?.paused === false) this.arm(spec);
  }

  private arm(spec: DagSpecEntry): void {
    const t = this.ticking!;
    const cron = parseCron(spec.cron);
    const after = Math.max(t.now(), spec.firstDue - 1);
    const tick = nextFireTime(cron, after, spec.timeZone);
    // catchup=False: no tick before now; end_date is inclusive.
    if (tick === undefined || (spec.lastDue !== undefined && tick > spec.lastDue)) return;
    const key = JSON.stringify(spec);
    const timer = t.scheduleAt(tick, () => {
      this.timers.delete(spec.dagId);
      this.run(spec, tick, 0);
      if (this.ticking === t) this.arm(spec);
    });
    this.timers.set(spec.dagId, { cancel: () => timer.cancel(), spec: key });
  }

  private run(spec: DagSpecEntry, tick: number, attempt: number): void {
    const t = this.ticking!;
    this.ticks.push([spec.dagId, tick]);
    t.fireDue(spec.groupId, tick).catch(() => {
      if (attempt < RETRIES && this.ticking === t)
        t.scheduleAt(t.now() + RETRY_MS, () => {
          if (this.ticking === t && this.dags.has(spec.dagId)) this.run(spec, tick, attempt + 1);
        });
    });
  }

  private validator(pointer: string): ValidateFunction {
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `airflow#${pointer}` });
      this.validators.set(pointer, v);
    }
    return v;
  }

  private check(pointer: string, value: unknown, what: string): boolean {
    const v = this.validator(pointer);
    if (v(value)) return true;
    this.violations.push(`${what}: ${this.ajv.errorsText(v.errors)}`);
    return false;
  }

  /** The spec's path template matching a concrete path, and its parameters. */
  private route(path: string): { template: string; params: Record<string, string> } | undefined {
    for (const template of Object.keys(this.spec.paths)) {
      const names: string[] = [];
      const re = new RegExp(
        '^' +
          template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, n: string) => {
            names.push(n);
            return '([^/]+)';
          }) +
          '$',
      );
      const m = re.exec(path);
      if (m) return { template, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const method = (req.method ?? 'GET').toLowerCase();
    let body: unknown;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        this.violations.push(`${method.toUpperCase()} ${url.pathname}: body is not JSON`);
      }
    }
    const send = (status: number, payload: unknown, pointer?: string) => {
      if (pointer && status !== 204) {
        try {
          this.validator(pointer);
          this.check(pointer, payload, `answer ${status} to ${method} ${url.pathname}`);
        } catch {
          this.violations.push(`answer ${status} to ${method} ${url.pathname}: not a response the spec lists`);
        }
      }
      this.calls.push({ method: method.toUpperCase(), path: url.pathname + url.search, status, body });
      if (method !== 'get' && status < 300) this.replan();
      if (status === 204) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    if (this.failing) return send(this.failing.status, { detail: this.failing.detail });

    if (url.pathname === '/auth/token') {
      if (method !== 'post') return send(405, { detail: 'Method Not Allowed' });
      const b = body as { username?: unknown; password?: unknown } | undefined;
      if (b?.username !== this.username || b?.password !== this.password)
        return send(401, { detail: 'Invalid credentials' });
      const exp = this.now() + this.tokenTtlMs;
      const token = jwt(exp, this.username);
      this.tokens.set(token, exp);
      return send(201, { access_token: token });
    }

    const r = this.route(url.pathname);
    const op = r ? this.spec.paths[r.template]?.[method] : undefined;
    if (!r || !op) {
      this.violations.push(`${method.toUpperCase()} ${url.pathname}: no such operation in the spec`);
      return send(404, { detail: 'Not Found' });
    }
    const opPointer = `/paths/${r.template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}`;
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const exp = this.tokens.get(token);
    if (op.security?.length && (exp === undefined || exp <= this.now()))
      return send(401, { detail: 'Not authenticated' }, `${opPointer}/responses/401/content/application~1json/schema`);
    if (op.requestBody?.content?.['application/json']?.schema) {
      if (
        !this.check(
          `${opPointer}/requestBody/content/application~1json/schema`,
          body,
          `${method.toUpperCase()} ${url.pathname} body`,
        )
      )
        return send(422, { detail: [] }, `${opPointer}/responses/422/content/application~1json/schema`);
    }
    const answer = (status: number, payload: unknown) =>
      send(
        status,
        payload,
        status === 204 ? undefined : `${opPointer}/responses/${status}/content/application~1json/schema`,
      );
    const notFound = (what: string) => answer(404, { detail: `${what} was not found` });
    const key = r.params.variable_key ?? r.params.dag_id ?? r.params.connection_id ?? '';

    switch (`${method} ${r.template}`) {
      case 'get /api/v2/version':
        return answer(200, { version: '3.0.2', git_version: null });
      case 'get /api/v2/variables': {
        const pattern = url.searchParams.get('variable_key_pattern') ?? '';
        const limit = Number(url.searchParams.get('limit') ?? 50);
        const offset = Number(url.searchParams.get('offset') ?? 0);
        const all = [...this.variables].filter(([k]) => k.includes(pattern));
        return answer(200, {
          variables: all.slice(offset, offset + limit).map(([k, v]) => this.variableResponse(k, v)),
          total_entries: all.length,
        });
      }
      case 'post /api/v2/variables': {
        const b = body as { key: string; value: unknown; description?: string | null };
        if (this.variables.has(b.key))
          return answer(409, { detail: `The Variable with key: \`${b.key}\` already exists` });
        this.variables.set(b.key, { value: String(b.value), description: b.description ?? null });
        return answer(201, this.variableResponse(b.key, this.variables.get(b.key)!));
      }
      case 'get /api/v2/variables/{variable_key}': {
        const v = this.variables.get(key);
        return v ? answer(200, this.variableResponse(key, v)) : notFound(`The Variable with key: \`${key}\``);
      }
      case 'patch /api/v2/variables/{variable_key}': {
        const b = body as { key: string; value: unknown; description?: string | null };
        if (!this.variables.has(key)) return notFound(`The Variable with key: \`${key}\``);
        if (b.key !== key)
          return answer(400, { detail: "Invalid body, key from request body doesn't match uri parameter" });
        this.variables.set(key, { value: String(b.value), description: b.description ?? null });
        return answer(200, this.variableResponse(key, this.variables.get(key)!));
      }
      case 'delete /api/v2/variables/{variable_key}':
        if (!this.variables.delete(key)) return notFound(`The Variable with key: \`${key}\``);
        return answer(204, undefined);
      case 'get /api/v2/dags/{dag_id}': {
        const d = this.dags.get(key);
        return d ? answer(200, this.dagResponse(key, d.paused)) : notFound(`Dag with id ${key}`);
      }
      case 'patch /api/v2/dags/{dag_id}': {
        const d = this.dags.get(key);
        if (!d) return notFound(`Dag with id: ${key}`);
        d.paused = (body as { is_paused: boolean }).is_paused;
        return answer(200, this.dagResponse(key, d.paused));
      }
      case 'delete /api/v2/dags/{dag_id}':
        if (!this.dags.delete(key)) return notFound(`Dag with id: ${key}`);
        return answer(200, null);
      case 'get /api/v2/connections/{connection_id}': {
        const c = this.connections.get(key);
        return c ? answer(200, this.connectionResponse(c)) : notFound(`The Connection with connection_id: \`${key}\``);
      }
      case 'post /api/v2/connections': {
        const b = body as Record<string, unknown>;
        const id = b.connection_id as string;
        if (this.connections.has(id))
          return answer(409, { detail: `Connection with connection_id: \`${id}\` already exists` });
        this.connections.set(id, b);
        return answer(201, this.connectionResponse(b));
      }
      case 'patch /api/v2/connections/{connection_id}': {
        if (!this.connections.has(key)) return notFound(`The Connection with connection_id: \`${key}\``);
        this.connections.set(key, body as Record<string, unknown>);
        return answer(200, this.connectionResponse(body as Record<string, unknown>));
      }
      default:
        this.violations.push(`${method.toUpperCase()} ${r.template}: in the spec, not expected from Sluice`);
        return answer(403, { detail: 'stand-in: operation not served' });
    }
  }

  private variableResponse(key: string, v: { value: string; description: string | null }) {
    return { key, value: v.value, description: v.description, is_encrypted: true };
  }

  private connectionResponse(c: Record<string, unknown>) {
    return {
      connection_id: c.connection_id,
      conn_type: c.conn_type,
      description: c.description ?? null,
      host: c.host ?? null,
      login: c.login ?? null,
      schema: c.schema ?? null,
      port: c.port ?? null,
      // Airflow masks secrets in answers.
      password: c.password == null ? null : '***',
      extra: c.extra ?? null,
    };
  }

  private dagResponse(dagId: string, paused: boolean) {
    return {
      dag_id: dagId,
      dag_display_name: dagId,
      is_paused: paused,
      is_stale: false,
      last_parsed_time: null,
      last_expired: null,
      bundle_name: 'dags-folder',
      bundle_version: null,
      relative_fileloc: 'sluice_dag_factory.py',
      fileloc: '/opt/airflow/dags/sluice_dag_factory.py',
      description: null,
      timetable_summary: null,
      timetable_description: null,
      tags: [],
      max_active_tasks: 16,
      max_active_runs: 1,
      max_consecutive_failed_dag_runs: 0,
      has_task_concurrency_limits: false,
      has_import_errors: false,
      next_dagrun_logical_date: null,
      next_dagrun_data_interval_start: null,
      next_dagrun_data_interval_end: null,
      next_dagrun_run_after: null,
      owners: ['sluice'],
      file_token: 'stand-in',
    };
  }
}
