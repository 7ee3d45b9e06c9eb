import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/** Each DolphinScheduler request gives up after this long (UNAVAILABLE). */
export const REQUEST_TIMEOUT_MS = 15_000;

/** The two API generations: 3.3 renamed process-definition to workflow-definition and its parameters. */
export type DsVersion = '3.2' | '3.3';

export interface DsWorkflow {
  readonly code: number;
  readonly name: string;
  readonly releaseState: string;
}
export interface DsSchedule {
  readonly id: number;
  readonly releaseState: string;
}
/** The `schedule` form field of a schedule: dates `yyyy-MM-dd HH:mm:ss`, a Quartz cron and a Java zone id. */
export interface DsScheduleParam {
  readonly startTime: string;
  readonly endTime: string;
  readonly crontab: string;
  readonly timezoneId: string;
}

type Params = Record<string, string | number>;

/**
 * A small client of DolphinScheduler's REST API (the `dolphinscheduler-api` controllers): form
 * parameters, the `token` header, and the `{code, msg, data}` envelope, whose code (not the HTTP
 * status) says whether a call worked. Refusals are FAILED_PRECONDITION with DolphinScheduler's `msg`;
 * an unreachable server, a 5xx or a timeout is UNAVAILABLE.
 */
export class DsClient {
  private readonly base: string;
  #version: DsVersion | undefined;

  constructor(
    url: string,
    private readonly token: string | undefined,
    version: 'auto' | DsVersion = 'auto',
  ) {
    this.base = url.replace(/\/+$/, '');
    if (version !== 'auto') this.#version = version;
  }

  /** One request: form fields in the body of POST and PUT, in the query of GET and DELETE. */
  private async send(method: string, path: string, params: Params): Promise<{ status: number; text: string }> {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) form.set(k, String(v));
    const inQuery = method === 'GET' || method === 'DELETE';
    const url = this.base + path + (inQuery && form.size > 0 ? `?${form}` : '');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.token = this.token;
    if (!inQuery) headers['content-type'] = 'application/x-www-form-urlencoded';
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(inQuery ? {} : { body: form.toString() }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `DolphinScheduler at ${this.base} cannot be reached (${method} ${path}): ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    if (res.status === 401)
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `DolphinScheduler refused the access token (${method} ${path}): check SLUICE_PLUGIN_DOLPHINSCHEDULER_TOKEN`,
      );
    if (res.status >= 500)
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `DolphinScheduler answered ${method} ${path} with HTTP ${res.status}`,
      );
    return { status: res.status, text };
  }

  /** A call whose `{code, msg, data}` envelope must say code 0; answers `data`. */
  private async call(method: string, path: string, params: Params = {}): Promise<unknown> {
    const { status, text } = await this.send(method, path, params);
    let body: { code?: unknown; msg?: unknown; data?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = {};
    }
    if (typeof body.code !== 'number')
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `DolphinScheduler answered ${method} ${path} with HTTP ${status} and no {code, msg, data} envelope: is the URL its API base (…/dolphinscheduler)?`,
      );
    if (body.code !== 0)
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `DolphinScheduler refused ${method} ${path}: ${String(body.msg)} (code ${body.code})`,
      );
    return body.data;
  }

  /**
   * Which generation answers, by one live request: 3.3 serves the workflow-definition paths (for the
   * unknown project 0 it answers an envelope), 3.2 has no such path and answers 404.
   */
  async detectVersion(): Promise<DsVersion> {
    const { status } = await this.send('GET', '/projects/0/workflow-definition/simple-list', {});
    return status === 404 ? '3.2' : '3.3';
  }

  /** The generation to speak: the setting, else detected once. */
  async version(): Promise<DsVersion> {
    this.#version ??= await this.detectVersion();
    return this.#version;
  }

  private defs(pc: number): string {
    return `/projects/${pc}/${this.#version === '3.3' ? 'workflow' : 'process'}-definition`;
  }
  private defCodeParam(): string {
    return this.#version === '3.3' ? 'workflowDefinitionCode' : 'processDefinitionCode';
  }

  /** The code of the project named `name`, created when missing. */
  async project(name: string): Promise<number> {
    const all = (await this.call('GET', '/projects/list')) as { name: string; code: number }[];
    const found = all.find((p) => p.name === name);
    if (found) return found.code;
    const created = (await this.call('POST', '/projects', {
      projectName: name,
      description: 'Workflows managed by Sluice',
    })) as { code: number };
    return created.code;
  }

  /** Workflows whose name starts with `prefix` (exact match is the caller's: searchVal is fuzzy). */
  async workflows(pc: number, prefix: string): Promise<DsWorkflow[]> {
    const out: DsWorkflow[] = [];
    for (let pageNo = 1; ; pageNo++) {
      const page = (await this.call('GET', this.defs(pc), { pageNo, pageSize: 100, searchVal: prefix })) as {
        totalList: DsWorkflow[];
        totalPage: number;
      };
      out.push(...page.totalList.filter((w) => w.name.startsWith(prefix)));
      if (pageNo >= page.totalPage) return out;
    }
  }

  async taskCode(pc: number): Promise<number> {
    const codes = (await this.call('GET', `/projects/${pc}/task-definition/gen-task-codes`, { genNum: 1 })) as number[];
    return codes[0]!;
  }

  /** The code of a workflow's first task, from its DAG data (3.2 and 3.3 name the list the same). */
  async taskCodeOf(pc: number, code: number): Promise<number | undefined> {
    const dag = (await this.call('GET', `${this.defs(pc)}/${code}`)) as { taskDefinitionList?: { code: number }[] };
    return dag.taskDefinitionList?.[0]?.code;
  }

  async createWorkflow(pc: number, form: Params): Promise<number> {
    return ((await this.call('POST', this.defs(pc), form)) as { code: number }).code;
  }

  async updateWorkflow(pc: number, code: number, form: Params): Promise<void> {
    await this.call('PUT', `${this.defs(pc)}/${code}`, form);
  }

  async release(pc: number, code: number, releaseState: 'ONLINE' | 'OFFLINE'): Promise<void> {
    await this.call('POST', `${this.defs(pc)}/${code}/release`, { releaseState });
  }

  async deleteWorkflow(pc: number, code: number): Promise<void> {
    await this.call('DELETE', `${this.defs(pc)}/${code}`);
  }

  async scheduleOf(pc: number, code: number): Promise<DsSchedule | undefined> {
    const page = (await this.call('GET', `/projects/${pc}/schedules`, {
      pageNo: 1,
      pageSize: 10,
      [this.defCodeParam()]: code,
    })) as { totalList: (DsSchedule & Record<string, unknown>)[] };
    return page.totalList.find((s) => s[this.defCodeParam()] === code);
  }

  async createSchedule(pc: number, code: number, schedule: DsScheduleParam): Promise<number> {
    const s = (await this.call('POST', `/projects/${pc}/schedules`, {
      [this.defCodeParam()]: code,
      schedule: JSON.stringify(schedule),
      failureStrategy: 'CONTINUE',
      warningType: 'NONE',
    })) as { id: number };
    return s.id;
  }

  async updateSchedule(pc: number, id: number, schedule: DsScheduleParam): Promise<void> {
    await this.call('PUT', `/projects/${pc}/schedules/${id}`, {
      schedule: JSON.stringify(schedule),
      failureStrategy: 'CONTINUE',
      warningType: 'NONE',
    });
  }

  async scheduleState(pc: number, id: number, state: 'online' | 'offline'): Promise<void> {
    await this.call('POST', `/projects/${pc}/schedules/${id}/${state}`);
  }
}
