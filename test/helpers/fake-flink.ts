import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Call {
  readonly server: 'gateway' | 'rest';
  readonly method: string;
  /** Path and query, with handles as the fake names them (session-1, op-1, ...). */
  readonly path: string;
  readonly body?: unknown;
}

export interface FakeOptions {
  /** Successive states GET /jobs/{id} answers (the last one repeats); CANCELED once cancelled. */
  jobStates?: string[];
  /** Index of the statement whose operation ends in ERROR, with this stack trace. */
  failStatement?: { index: number; trace: string };
  /** Polls of an operation's status that answer RUNNING before FINISHED (default 1). */
  runningPolls?: number;
  /** The same for the INSERT's operation (default runningPolls). */
  insertRunningPolls?: number;
  /** Flink 1.16: no top-level jobID in the INSERT's result, only the "job id" row. */
  legacyResult?: boolean;
  /** Answer 503 to the first `times` requests that match. */
  unavailable?: { times: number; match: (c: Call) => boolean };
  /** GET /jobs/{id}/exceptions body. */
  exceptions?: unknown;
  /** Called for every request, after it is recorded (to abort at a chosen moment). */
  onRequest?: (c: Call, calls: readonly Call[]) => void;
}

export const FLINK_JOB_ID = 'a3f1c2d4e5b60718293a4b5c6d7e8f90';

/** Answers as Flink's SQL Gateway (REST API v1) and Flink's REST API do, on two ports; records every request. */
export class FakeFlink {
  readonly calls: Call[] = [];
  readonly #options: FakeOptions;
  readonly #servers: Server[] = [];
  #sessions = 0;
  readonly #ops = new Map<
    string,
    { statement: string; index: number; polls: number; status: string; fetches: number }
  >();
  #jobPolls = 0;
  #cancelled = false;
  gatewayUrl = '';
  restUrl = '';

  constructor(options: FakeOptions = {}) {
    this.#options = options;
  }

  async start(): Promise<this> {
    for (const role of ['gateway', 'rest'] as const) {
      const server = createServer((req, res) => void this.#handle(role, req, res));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      this.#servers.push(server);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (role === 'gateway') this.gatewayUrl = url;
      else this.restUrl = url;
    }
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#servers.map((s) => {
        s.closeAllConnections();
        return new Promise<void>((resolve) => s.close(() => resolve()));
      }),
    );
  }

  /** The requests as "METHOD path" lines, for exact comparison. */
  lines(): string[] {
    return this.calls.map((c) => `${c.server} ${c.method} ${c.path}`);
  }

  async #handle(server: 'gateway' | 'rest', req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const call: Call = {
      server,
      method: req.method ?? '',
      path: req.url ?? '',
      ...(text ? { body: JSON.parse(text) as unknown } : {}),
    };
    this.calls.push(call);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const u = this.#options.unavailable;
    if (u && u.times > 0 && u.match(call)) {
      u.times--;
      return send(503, {
        errors: ['Service temporarily unavailable due to an ongoing leader election. Please refresh.'],
      });
    }
    this.#options.onRequest?.(call, this.calls);
    const [path] = call.path.split('?') as [string];
    const m = (re: RegExp) => re.exec(path);
    let r: RegExpExecArray | null;
    if (server === 'gateway') {
      if (call.method === 'POST' && path === '/v1/sessions')
        return send(200, { sessionHandle: `session-${++this.#sessions}` });
      if ((r = m(/^\/v1\/sessions\/(session-\d+)/)) && Number(r[1]!.slice(8)) > this.#sessions) {
        return send(500, {
          errors: [
            'Internal server error.',
            `org.apache.flink.table.gateway.api.utils.SqlGatewayException: Session '${r[1]}' does not exist.`,
          ],
        });
      }
      if (call.method === 'POST' && (r = m(/^\/v1\/sessions\/[^/]+\/statements$/))) {
        const id = `op-${this.#ops.size + 1}`;
        this.#ops.set(id, {
          statement: (call.body as { statement: string }).statement,
          index: this.#ops.size,
          polls: 0,
          status: 'RUNNING',
          fetches: 0,
        });
        return send(200, { operationHandle: id });
      }
      if (call.method === 'GET' && (r = m(/^\/v1\/sessions\/[^/]+\/operations\/([^/]+)\/status$/))) {
        const op = this.#ops.get(r[1]!)!;
        const running = op.statement.startsWith('INSERT')
          ? (this.#options.insertRunningPolls ?? this.#options.runningPolls ?? 1)
          : (this.#options.runningPolls ?? 1);
        if (op.status === 'RUNNING' && ++op.polls > running)
          op.status = this.#options.failStatement?.index === op.index ? 'ERROR' : 'FINISHED';
        return send(200, { status: op.status });
      }
      if (call.method === 'GET' && (r = m(/^\/v1\/sessions\/([^/]+)\/operations\/([^/]+)\/result\/(\d+)$/))) {
        const op = this.#ops.get(r[2]!)!;
        if (op.status === 'ERROR') {
          return send(500, {
            errors: [
              'Internal server error.',
              `org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n\tat org.apache.flink...\nCaused by: ${this.#options.failStatement!.trace}`,
            ],
          });
        }
        const next = (token: number) => `/v1/sessions/${r![1]}/operations/${r![2]}/result/${token}`;
        const isInsert = op.statement.startsWith('INSERT');
        if (isInsert && op.fetches++ === 0) return send(200, { resultType: 'NOT_READY', nextResultUri: next(0) });
        const columns = isInsert
          ? [{ name: 'job id', logicalType: { type: 'VARCHAR', nullable: false, length: 32 }, comment: null }]
          : [{ name: 'result', logicalType: { type: 'VARCHAR', nullable: true, length: 2147483647 }, comment: null }];
        const data = [{ kind: 'INSERT', fields: [isInsert ? FLINK_JOB_ID : 'OK'] }];
        return send(200, {
          resultType: 'PAYLOAD',
          isQueryResult: false,
          ...(isInsert && !this.#options.legacyResult ? { jobID: FLINK_JOB_ID } : {}),
          resultKind: 'SUCCESS_WITH_CONTENT',
          results: { columns, rowFormat: 'JSON', data },
          nextResultUri: next(Number(r[3]) + 1),
        });
      }
      if (call.method === 'POST' && (r = m(/^\/v1\/sessions\/[^/]+\/operations\/([^/]+)\/cancel$/))) {
        this.#ops.get(r[1]!)!.status = 'CANCELED';
        return send(200, { status: 'CANCELED' });
      }
      if (call.method === 'DELETE' && m(/^\/v1\/sessions\/[^/]+$/)) return send(200, { status: 'CLOSED' });
    } else {
      if (call.method === 'GET' && (r = m(/^\/jobs\/([0-9a-f]{32})$/)) && r[1] === FLINK_JOB_ID) {
        const states = this.#options.jobStates ?? ['CREATED', 'RUNNING', 'FINISHED'];
        const state = this.#cancelled ? 'CANCELED' : states[Math.min(this.#jobPolls++, states.length - 1)]!;
        return send(200, {
          jid: FLINK_JOB_ID,
          name: 'sluice-job',
          isStoppable: false,
          state,
          vertices: [
            {
              id: 'v1',
              name: 'Source: src',
              parallelism: 1,
              status: state,
              metrics: {
                'read-records': 0,
                'write-records': 10 * this.#jobPolls,
                'read-bytes': 0,
                'write-bytes': 640 * this.#jobPolls,
              },
            },
            {
              id: 'v2',
              name: 'Sink: sink',
              parallelism: 1,
              status: state,
              metrics: {
                'read-records': 10 * this.#jobPolls,
                'write-records': 0,
                'read-bytes': 640 * this.#jobPolls,
                'write-bytes': 0,
              },
            },
          ],
        });
      }
      if (call.method === 'GET' && path === `/jobs/${FLINK_JOB_ID}/exceptions`)
        return send(200, this.#options.exceptions ?? { exceptionHistory: { entries: [], truncated: false } });
      if (call.method === 'PATCH' && path === `/jobs/${FLINK_JOB_ID}`) {
        this.#cancelled = true;
        return send(202, {});
      }
    }
    send(404, { errors: [`Not found: ${path}`] });
  }
}
