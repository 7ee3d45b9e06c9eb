/**
 * A stand-in for DolphinScheduler's API server (3.2 or 3.3), held to the controllers of
 * apache/dolphinscheduler (3.2.2 and the 3.3 line; notes in /work/shared/specs/dolphinscheduler):
 * every call needs the `token` header (401 with an empty body otherwise), parameters come as form
 * fields on POST and PUT and in the query on GET and DELETE, required ones are checked by name (3.3's
 * `workflowDefinitionCode` where 3.2 says `processDefinitionCode`), and the service rules the plugin
 * meets are enforced with DolphinScheduler's codes: no edit while online, schedules only for online
 * workflows, one schedule per workflow, no delete while online. Anything the stand-in cannot place is
 * recorded in `violations` (tests assert it stays empty).
 *
 * It keeps projects, workflows and schedules, and plays Quartz: `attach` puts each online schedule's
 * ticks (its cron evaluated by Sluice's own evaluator in the schedule's zone, between its start and
 * end read as UTC, the stand-in server's zone) on a test clock, and each tick runs the workflow's HTTP
 * task: its body's `$[timestamp(yyyyMMddHHmmss)]` resolved to the tick's epoch seconds, in 3.3 every
 * body value re-sent as a string, as its HttpTask does.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nextFireTime, parseCron } from '../../services/schedule/domain/cron.js';
import { isValidTimeZone } from '../../services/schedule/domain/zoned-time.js';

export type DsVersion = '3.2' | '3.3';

export interface DsTaskRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The tick (epoch ms) that ran it. */
  readonly at: number;
}

interface Workflow {
  code: number;
  name: string;
  projectCode: number;
  releaseState: 'ONLINE' | 'OFFLINE';
  tasks: Record<string, unknown>[];
  relations: Record<string, unknown>[];
  version: number;
}
interface Schedule {
  id: number;
  workflowCode: number;
  projectCode: number;
  releaseState: 'ONLINE' | 'OFFLINE';
  startTime: string;
  endTime: string;
  crontab: string;
  timezoneId: string;
}

class Refusal extends Error {
  constructor(
    readonly code: number,
    msg: string,
  ) {
    super(msg);
  }
}

/** What a path no controller maps answers (Spring's 404), as the route's result. */
const NOT_FOUND = Symbol('not found');
const DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const utc = (s: string) => Date.parse(`${s.replace(' ', 'T')}Z`);

export class FakeDolphinScheduler {
  readonly token = 'ds-access-token-0123456789';
  readonly projects = new Map<number, { code: number; name: string }>();
  readonly workflows = new Map<number, Workflow>();
  readonly schedules = new Map<number, Schedule>();
  readonly calls: { method: string; path: string; code: number }[] = [];
  readonly violations: string[] = [];
  /** HTTP tasks the ticks ran. */
  readonly runs: DsTaskRequest[] = [];
  /** When set, calls matching it are refused with this code and message (DolphinScheduler saying no). */
  refuse: { match: RegExp; code: number; msg: string } | undefined;
  /** When true, the server answers nothing: connections are reset. */
  down = false;
  url = '';
  private server: Server | undefined;
  private nextCode = 14_000_000_000_000;
  private nextId = 1;
  private clock: { now(): number; scheduleAt(at: number, fn: () => void): { cancel(): void } } | undefined;
  private run: ((request: DsTaskRequest) => Promise<void>) | undefined;
  private readonly timers = new Map<number, { cancel(): void }>();
  private readonly lastTick = new Map<number, number>();

  constructor(readonly version: DsVersion) {}

  async listen(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/dolphinscheduler`;
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Plays Quartz on `clock`: each online schedule's ticks run its workflow's HTTP task through `run`. */
  attach(
    clock: { now(): number; scheduleAt(at: number, fn: () => void): { cancel(): void } },
    run: (request: DsTaskRequest) => Promise<void>,
  ): void {
    this.clock = clock;
    this.run = run;
    this.lastTick.clear();
    this.rearm();
  }

  /** Stops playing Quartz (the test clock is going away). */
  detach(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.clock = undefined;
    this.run = undefined;
  }

  get definitionsSegment(): string {
    return this.version === '3.3' ? 'workflow-definition' : 'process-definition';
  }
  get codeParam(): string {
    return this.version === '3.3' ? 'workflowDefinitionCode' : 'processDefinitionCode';
  }

  /** Workflows by name, for assertions. */
  workflowNamed(name: string): Workflow | undefined {
    return [...this.workflows.values()].find((w) => w.name === name);
  }
  scheduleOf(code: number): Schedule | undefined {
    return [...this.schedules.values()].find((s) => s.workflowCode === code);
  }

  private rearm(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    if (!this.clock) return;
    for (const s of this.schedules.values()) this.arm(s);
  }

  private arm(s: Schedule): void {
    const clock = this.clock!;
    const wf = this.workflows.get(s.workflowCode);
    if (s.releaseState !== 'ONLINE' || wf?.releaseState !== 'ONLINE') return;
    const after = Math.max(clock.now() - 1, utc(s.startTime) - 1, this.lastTick.get(s.id) ?? -Infinity);
    const at = nextFireTime(parseCron(s.crontab), after, s.timezoneId, utc(s.endTime));
    if (at === undefined || at > utc(s.endTime)) return;
    this.timers.set(
      s.id,
      clock.scheduleAt(at, () => {
        this.timers.delete(s.id);
        this.lastTick.set(s.id, at);
        void this.tick(wf, at).finally(() => this.schedules.get(s.id) === s && this.arm(s));
      }),
    );
  }

  /** Runs the workflow's one HTTP task as DolphinScheduler's worker would. */
  private async tick(wf: Workflow, at: number): Promise<void> {
    const task = wf.tasks[0]!;
    const p = task.taskParams as {
      url: string;
      httpMethod: string;
      httpParams: { prop: string; httpParametersType: string; value: string }[];
      httpBody: string;
    };
    const seconds = String(Math.floor(at / 1000));
    let body = p.httpBody.replaceAll('$[timestamp(yyyyMMddHHmmss)]', seconds);
    if (/\$\[|\$\{/.test(body)) this.violations.push(`unresolved placeholder in the HTTP body: ${body}`);
    if (this.version === '3.3') {
      // HttpTask 3.3: the body is read as Map<String, String> and written back as JSON.
      const map = JSON.parse(body) as Record<string, unknown>;
      body = JSON.stringify(Object.fromEntries(Object.entries(map).map(([k, v]) => [k, String(v)])));
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const h of p.httpParams) if (h.httpParametersType === 'HEADERS') headers[h.prop.toLowerCase()] = h.value;
    const request = { url: p.url, method: p.httpMethod, headers, body, at };
    this.runs.push(request);
    await this.run?.(request);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const path = u.pathname.replace(/^\/dolphinscheduler/, '');
    const reply = (status: number, payload: unknown) => {
      this.calls.push({ method, path, code: (payload as { code?: number })?.code ?? status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    if (!u.pathname.startsWith('/dolphinscheduler/')) return reply(404, { status: 404, error: 'Not Found' });
    if (req.headers.token !== this.token) {
      this.calls.push({ method, path, code: 401 });
      res.writeHead(401);
      res.end();
      return;
    }
    const inQuery = method === 'GET' || method === 'DELETE';
    if (!inQuery && !/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? ''))
      this.violations.push(`${method} ${path}: parameters must be form fields, got ${req.headers['content-type']}`);
    if (inQuery && raw !== '') this.violations.push(`${method} ${path}: parameters must be in the query, got a body`);
    const params = inQuery ? u.searchParams : new URLSearchParams(raw);
    try {
      const data = this.route(method, path, params);
      if (data === NOT_FOUND) return reply(404, { timestamp: Date.now(), status: 404, error: 'Not Found', path });
      reply(method === 'POST' && /\/(projects|definition|schedules)$/.test(path) ? 201 : 200, {
        code: 0,
        msg: 'success',
        data: data ?? null,
        success: true,
        failed: false,
      });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      reply(200, { code: err.code, msg: err.message, data: null, success: false, failed: true });
    }
  }

  private route(method: string, path: string, q: URLSearchParams): unknown {
    const need = (name: string) => {
      const v = q.get(name);
      if (v === null || v === '') throw new Refusal(10001, `Required request parameter '${name}' is not present`);
      return v;
    };
    const needInt = (name: string) => {
      const v = need(name);
      if (!/^-?\d+$/.test(v)) throw new Refusal(10001, `request parameter '${name}' is not a number: ${v}`);
      return Number(v);
    };
    if (this.refuse?.match.test(`${method} ${path}`)) throw new Refusal(this.refuse.code, this.refuse.msg);
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/projects/list') return [...this.projects.values()];
    if (method === 'POST' && path === '/projects') {
      const name = need('projectName');
      if ([...this.projects.values()].some((p) => p.name === name))
        throw new Refusal(10019, `project ${name} already exists`);
      const p = { code: this.nextCode++, name };
      this.projects.set(p.code, p);
      return p;
    }
    if ((m = /^\/projects\/(\d+)\/(.*)$/.exec(path)) === null) return NOT_FOUND;
    const pc = Number(m[1]);
    const rest = m[2]!;
    const project = this.projects.get(pc);
    const defs = this.definitionsSegment;
    if (rest.startsWith('process-definition') || rest.startsWith('workflow-definition')) {
      if (!rest.startsWith(defs)) return NOT_FOUND; // the other generation's path: no handler
      if (!project) throw new Refusal(10018, `project ${pc} not found`);
      const sub = rest.slice(defs.length);
      if (method === 'GET' && sub === '/simple-list')
        return [...this.workflows.values()]
          .filter((w) => w.projectCode === pc)
          .map((w) => ({ code: w.code, name: w.name }));
      if (method === 'GET' && sub === '') {
        const pageNo = needInt('pageNo');
        const pageSize = needInt('pageSize');
        const search = q.get('searchVal') ?? '';
        const all = [...this.workflows.values()].filter((w) => w.projectCode === pc && w.name.includes(search));
        return {
          totalList: all.slice((pageNo - 1) * pageSize, pageNo * pageSize).map((w) => this.definitionView(w)),
          total: all.length,
          totalPage: Math.max(1, Math.ceil(all.length / pageSize)),
          pageSize,
          currentPage: pageNo,
          pageNo,
        };
      }
      if (method === 'POST' && sub === '') {
        const form = this.definitionForm(q);
        if ([...this.workflows.values()].some((w) => w.projectCode === pc && w.name === form.name))
          throw new Refusal(10168, `workflow definition name ${form.name} already exists`);
        const w: Workflow = { code: this.nextCode++, projectCode: pc, releaseState: 'OFFLINE', version: 1, ...form };
        this.workflows.set(w.code, w);
        return this.definitionView(w);
      }
      const byCode = /^\/(\d+)(\/release)?$/.exec(sub);
      const w = byCode ? this.workflows.get(Number(byCode[1])) : undefined;
      if (byCode && (!w || w.projectCode !== pc))
        throw new Refusal(50003, `workflow definition ${byCode[1]} does not exist`);
      if (w && method === 'GET' && !byCode![2]) {
        const key = this.version === '3.3' ? 'workflowDefinition' : 'processDefinition';
        const rel = this.version === '3.3' ? 'workflowTaskRelationList' : 'processTaskRelationList';
        return { [key]: this.definitionView(w), [rel]: w.relations, taskDefinitionList: w.tasks };
      }
      if (w && method === 'PUT' && !byCode![2]) {
        if (w.releaseState === 'ONLINE')
          throw new Refusal(50008, `workflow definition ${w.code} is online: not allowed to edit`);
        const form = this.definitionForm(q);
        if ([...this.workflows.values()].some((x) => x !== w && x.projectCode === pc && x.name === form.name))
          throw new Refusal(10168, `workflow definition name ${form.name} already exists`);
        Object.assign(w, form, { version: w.version + 1 });
        return this.definitionView(w);
      }
      if (w && method === 'POST' && byCode![2]) {
        const state = need('releaseState');
        if (state !== 'ONLINE' && state !== 'OFFLINE') throw new Refusal(10001, `releaseState ${state}`);
        w.releaseState = state;
        if (state === 'OFFLINE') {
          const s = this.scheduleOf(w.code);
          if (s) s.releaseState = 'OFFLINE';
        }
        this.rearm();
        return true;
      }
      if (w && method === 'DELETE' && !byCode![2]) {
        if (w.releaseState === 'ONLINE') throw new Refusal(50021, `workflow definition ${w.code} is online`);
        const s = this.scheduleOf(w.code);
        if (s?.releaseState === 'ONLINE') throw new Refusal(50023, `schedule ${s.id} is online`);
        if (s) this.schedules.delete(s.id);
        this.workflows.delete(w.code);
        this.rearm();
        return null;
      }
      return NOT_FOUND;
    }
    if (!project) throw new Refusal(10018, `project ${pc} not found`);
    if (method === 'GET' && rest === 'task-definition/gen-task-codes') {
      const n = needInt('genNum');
      if (n < 1 || n > 100) throw new Refusal(50017, 'genNum must be 1 to 100');
      return Array.from({ length: n }, () => this.nextCode++);
    }
    if (rest === 'schedules' && method === 'GET') {
      const pageNo = needInt('pageNo');
      const pageSize = needInt('pageSize');
      const code = Number(q.get(this.codeParam) ?? 0);
      if (q.has(this.version === '3.3' ? 'processDefinitionCode' : 'workflowDefinitionCode'))
        this.violations.push(`GET schedules: ${this.version} filters by ${this.codeParam}`);
      const all = [...this.schedules.values()].filter(
        (s) => s.projectCode === pc && (code === 0 || s.workflowCode === code),
      );
      return {
        totalList: all.slice((pageNo - 1) * pageSize, pageNo * pageSize).map((s) => this.scheduleView(s)),
        total: all.length,
        totalPage: 1,
        pageSize,
        currentPage: pageNo,
        pageNo,
      };
    }
    if (rest === 'schedules' && method === 'POST') {
      const code = needInt(this.codeParam);
      const w = this.workflows.get(code);
      if (!w) throw new Refusal(50003, `workflow definition ${code} does not exist`);
      if (w.releaseState !== 'ONLINE') throw new Refusal(50004, `workflow definition ${code} is not online`);
      if (this.scheduleOf(code)) throw new Refusal(10204, `schedule of ${code} already exists`);
      const s: Schedule = {
        id: this.nextId++,
        workflowCode: code,
        projectCode: pc,
        releaseState: 'OFFLINE',
        ...this.scheduleParam(need('schedule'), 10001),
      };
      this.schedules.set(s.id, s);
      return this.scheduleView(s);
    }
    const sm = /^schedules\/(\d+)(\/online|\/offline)?$/.exec(rest);
    if (sm) {
      const s = this.schedules.get(Number(sm[1]));
      if (!s || s.projectCode !== pc) throw new Refusal(10203, `schedule ${sm[1]} does not exist`);
      if (method === 'PUT' && !sm[2]) {
        if (s.releaseState === 'ONLINE') throw new Refusal(10023, `schedule ${s.id} is online: not allowed to update`);
        Object.assign(s, this.scheduleParam(need('schedule'), 10024));
        return this.scheduleView(s);
      }
      if (method === 'POST' && sm[2]) {
        if (sm[2] === '/online' && this.workflows.get(s.workflowCode)?.releaseState !== 'ONLINE')
          throw new Refusal(50004, `workflow definition ${s.workflowCode} is not online`);
        s.releaseState = sm[2] === '/online' ? 'ONLINE' : 'OFFLINE';
        this.rearm();
        return true;
      }
      if (method === 'DELETE' && !sm[2]) {
        if (s.releaseState === 'ONLINE') throw new Refusal(50023, `schedule ${s.id} is online`);
        this.schedules.delete(s.id);
        return null;
      }
    }
    return NOT_FOUND;
  }

  private definitionView(w: Workflow) {
    return { code: w.code, name: w.name, projectCode: w.projectCode, releaseState: w.releaseState, version: w.version };
  }

  private scheduleView(s: Schedule) {
    return {
      id: s.id,
      [this.codeParam]: s.workflowCode,
      startTime: s.startTime,
      endTime: s.endTime,
      crontab: s.crontab,
      timezoneId: s.timezoneId,
      releaseState: s.releaseState,
    };
  }

  /** The fields of a workflow create or update, checked as DolphinScheduler's service checks them. */
  private definitionForm(q: URLSearchParams): Pick<Workflow, 'name' | 'tasks' | 'relations'> {
    const name = q.get('name');
    const tasksText = q.get('taskDefinitionJson');
    const relationsText = q.get('taskRelationJson');
    if (!name || !tasksText || !relationsText)
      throw new Refusal(10001, 'name, taskDefinitionJson and taskRelationJson are required');
    let tasks: Record<string, unknown>[];
    let relations: Record<string, unknown>[];
    try {
      tasks = JSON.parse(tasksText) as Record<string, unknown>[];
      relations = JSON.parse(relationsText) as Record<string, unknown>[];
    } catch {
      throw new Refusal(10001, 'taskDefinitionJson or taskRelationJson is not JSON');
    }
    if (!Array.isArray(tasks) || tasks.length === 0) throw new Refusal(50017, 'empty task definition');
    for (const t of tasks) {
      if (t.taskType !== 'HTTP') this.violations.push(`task type ${String(t.taskType)}, expected HTTP`);
      const p = t.taskParams as { url?: string; httpMethod?: string; connectTimeout?: number } | undefined;
      const ok = !!p?.url && !!p.httpMethod && (this.version === '3.2' || (p.connectTimeout ?? 0) > 0);
      if (!ok) throw new Refusal(50020, `task ${String(t.name)}: parameters invalid`);
      for (const k of ['code', 'name', 'failRetryTimes', 'failRetryInterval', 'flag', 'taskPriority', 'workerGroup'])
        if (!(k in t)) this.violations.push(`task without ${k}`);
    }
    const codes = new Set(tasks.map((t) => t.code));
    for (const r of relations)
      if (!codes.has(r.postTaskCode)) throw new Refusal(50036, `task ${String(r.postTaskCode)} does not exist`);
    for (const k of ['locations', 'globalParams', 'executionType', 'timeout'])
      if (
        q.has(k) &&
        k === 'executionType' &&
        !['PARALLEL', 'SERIAL_WAIT', 'SERIAL_DISCARD', 'SERIAL_PRIORITY'].includes(q.get(k)!)
      )
        throw new Refusal(10001, `executionType ${q.get(k)}`);
    return { name, tasks, relations };
  }

  /** The `schedule` form field: dates `yyyy-MM-dd HH:mm:ss`, a Quartz cron, a zone id. */
  private scheduleParam(
    text: string,
    badCron: number,
  ): Pick<Schedule, 'startTime' | 'endTime' | 'crontab' | 'timezoneId'> {
    let p: { startTime?: unknown; endTime?: unknown; crontab?: unknown; timezoneId?: unknown };
    try {
      p = JSON.parse(text) as typeof p;
    } catch {
      throw new Refusal(10001, 'schedule is not JSON');
    }
    const { startTime, endTime, crontab, timezoneId } = p;
    if (typeof startTime !== 'string' || !DATE.test(startTime) || typeof endTime !== 'string' || !DATE.test(endTime))
      throw new Refusal(10001, `schedule dates must be yyyy-MM-dd HH:mm:ss: ${text}`);
    if (startTime === endTime) throw new Refusal(10141, 'start time and end time are the same');
    if (utc(startTime) > utc(endTime)) throw new Refusal(80003, 'start time is after end time');
    if (typeof timezoneId !== 'string' || !isValidTimeZone(timezoneId))
      throw new Refusal(10001, `timezoneId ${String(timezoneId)}`);
    const fields = typeof crontab === 'string' ? crontab.trim().split(/\s+/) : [];
    if (fields.length !== 6 && fields.length !== 7)
      throw new Refusal(badCron, `${String(crontab)} is not a Quartz cron`);
    try {
      parseCron(crontab as string);
    } catch {
      throw new Refusal(badCron, `${String(crontab)} is not a valid cron`);
    }
    return { startTime, endTime, crontab: crontab as string, timezoneId };
  }
}
