/**
 * End-to-end tracing: each case runs test/helpers/trace-scenario.ts in a child Node process, because the
 * gRPC instrumentation can only patch grpc-js when the OpenTelemetry loader hook is registered by an
 * --import bootstrap before grpc-js is loaded (this AVA worker has long since loaded it).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import {
  CALLER_SPAN_ID,
  CALLER_TRACE_ID,
  RESULT_PREFIX,
  type ScenarioMode,
  type ScenarioResult,
  type SpanSummary,
} from './helpers/trace-protocol.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Per child run; the runs are serial, as eight Sluice processes compiling under tsx at once overload a small machine. */
const CHILD_TIMEOUT_MS = 60_000;
const METHOD = 'sluice.catalog.v1.CatalogService/ResolveBoundaries';
/** @opentelemetry/api SpanKind values. */
const SPAN_KIND = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;

interface OtlpRequest {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

interface Receiver {
  readonly endpoint: string;
  readonly requests: OtlpRequest[];
  close(): Promise<void>;
}

interface Context {
  receiver?: Receiver;
}

const test = anyTest as TestFn<Context>;

/**
 * Without any OTEL_* variable the child is told no address, so "nothing sent" means nothing reached the
 * OTLP default endpoint, http://localhost:4318/v1/traces: a receiver listens there, on both loopback
 * addresses, when the port is free (probed before the tests are declared).
 */
const DEFAULT_OTLP_PORT = 4318;
const defaultRequests: OtlpRequest[] = [];
const defaultServers: Server[] = [];
const defaultPortFree = await (async () => {
  for (const host of ['127.0.0.1', '::1']) {
    const server = receiverServer(defaultRequests);
    try {
      await listen(server, DEFAULT_OTLP_PORT, host);
      defaultServers.push(server);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' && host === '::1') continue; // no IPv6 here
      await Promise.all(defaultServers.splice(0).map((x) => new Promise((r) => x.close(r))));
      return false;
    }
  }
  return true;
})();
test.after.always(() =>
  Promise.all(
    defaultServers.map(
      (server) =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    ),
  ),
);

test.afterEach.always(async (t) => {
  await t.context.receiver?.close();
});

/** A minimal OTLP/HTTP collector: records every request and answers every POST with 200 and an empty body. */
function receiverServer(requests: OtlpRequest[]): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks),
      });
      res.writeHead(req.method === 'POST' ? 200 : 404).end();
    });
  });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

async function startReceiver(t: ExecutionContext<Context>): Promise<Receiver> {
  const requests: OtlpRequest[] = [];
  const server = receiverServer(requests);
  await listen(server, 0, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  t.context.receiver = receiver;
  return receiver;
}

interface ChildRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** The parent's environment without any OTEL_* variable, plus `extra`. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('OTEL_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs the scenario in a child with the given bootstrap (path relative to the repository root). */
async function runScenario(bootstrap: string, mode: ScenarioMode, env: Record<string, string> = {}): Promise<ChildRun> {
  // The child's data and output live in a folder this process owns, removed even when the child is killed.
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-trace-'));
  try {
    return await runChild(bootstrap, mode, { ...env, SLUICE_DATA_DIR: dataDir });
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

function runChild(bootstrap: string, mode: ScenarioMode, env: Record<string, string>): Promise<ChildRun> {
  const args = [
    '--conditions=development',
    '--import',
    'tsx',
    '--import',
    bootstrap,
    'test/helpers/trace-scenario.ts',
    mode,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CHILD_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Everything about a child run, for assertion messages. */
function describeRun(run: ChildRun): string {
  return `exit code ${run.code}, signal ${run.signal}${run.timedOut ? ` (killed after ${CHILD_TIMEOUT_MS} ms)` : ''}\n--- child stdout ---\n${run.stdout}\n--- child stderr ---\n${run.stderr}`;
}

/** Checks the child succeeded and returns the result line it printed; throws (failing the test, with the child's output) otherwise. */
function scenarioResult(run: ChildRun): ScenarioResult {
  if (run.code !== 0 || run.timedOut) throw new Error(`the scenario failed: ${describeRun(run)}`);
  const line = run.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) throw new Error(`the scenario printed no result line: ${describeRun(run)}`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ScenarioResult;
}

function onlySpan(
  spans: SpanSummary[],
  predicate: (s: SpanSummary) => boolean,
  what: string,
  details: string,
): SpanSummary {
  const found = spans.filter(predicate);
  if (found.length !== 1 || found[0] === undefined)
    throw new Error(`expected exactly one ${what}, found ${found.length}\n${details}`);
  return found[0];
}

/** True when `ancestor` is `span`'s parent, grandparent, ... */
function descendsFrom(span: SpanSummary, ancestor: SpanSummary, spans: SpanSummary[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const seen = new Set<string>();
  for (let id = span.parentSpanId; id !== undefined && !seen.has(id); id = byId.get(id)?.parentSpanId) {
    if (id === ancestor.spanId) return true;
    seen.add(id);
  }
  return false;
}

test.serial(
  'in-memory: client, server and plugin hook spans of one ResolveBoundaries call form one trace',
  async (t) => {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const run = await runScenario('./test/helpers/otel-memory-bootstrap.ts', 'memory');
    const result = scenarioResult(run);
    const spans = result.spans ?? [];
    const details = `spans: ${JSON.stringify(spans, null, 2)}\n${describeRun(run)}`;

    t.true(result.telemetryActive, `telemetry should be active\n${details}`);
    t.true(result.grpcInstrumented, `grpc-js should be patched by the instrumentation\n${details}`);
    t.like(
      result.resolved as object,
      { boundaries: { lowerBound: '0', upperBound: '10000' } },
      'the call itself succeeded',
    );

    const grpcName = `grpc.${METHOD}`;
    const client = onlySpan(
      spans,
      (s) => s.name === grpcName && s.kind === SPAN_KIND.CLIENT,
      `gRPC client span '${grpcName}'`,
      details,
    );
    const server = onlySpan(
      spans,
      (s) => s.name === grpcName && s.kind === SPAN_KIND.SERVER,
      `gRPC server span '${grpcName}'`,
      details,
    );
    // The scenario's HTTP callback resolves a window too, in its caller's trace: take the ResolveBoundaries one.
    const fill = onlySpan(
      spans,
      (s) => s.name === 'plugin datagen.fillInBoundaries' && s.traceId === client.traceId,
      "span 'plugin datagen.fillInBoundaries' in the call's trace",
      details,
    );

    t.is(server.traceId, client.traceId, `server and client spans share the trace\n${details}`);
    t.is(
      server.parentSpanId,
      client.spanId,
      `the server span's parent is the client span (W3C propagation)\n${details}`,
    );
    t.is(fill.traceId, server.traceId, `the plugin hook span is in the same trace\n${details}`);
    t.true(descendsFrom(fill, server, spans), `the plugin hook span descends from the server span\n${details}`);
    t.is(fill.kind, SPAN_KIND.INTERNAL);
    t.like(fill.attributes, { 'sluice.plugin.id': 'datagen', 'sluice.plugin.hook': 'fillInBoundaries' }, details);

    const validate = spans.find((s) => s.name === 'plugin datagen.validate' && s.traceId === client.traceId);
    t.truthy(validate, `a 'plugin datagen.validate' span exists\n${details}`);
    if (validate)
      t.true(descendsFrom(validate, server, spans), `the validate span descends from the server span\n${details}`);
  },
);

test.serial(
  "in-memory: the HTTP callback continues the caller's W3C trace, and the job it starts joins it",
  async (t) => {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const run = await runScenario('./test/helpers/otel-memory-bootstrap.ts', 'memory');
    const result = scenarioResult(run);
    const spans = result.spans ?? [];
    const details = `spans: ${JSON.stringify(spans.map((s) => [s.name, s.traceId, s.parentSpanId]))}\n${describeRun(run)}`;
    const callback = spans.find((s) => s.name === 'POST /inlong/manager/api/group/submitOfflineJob');
    t.truthy(callback, `a callback server span exists\n${details}`);
    t.is(callback!.traceId, CALLER_TRACE_ID, "the callback span is in the caller's trace");
    t.is(callback!.parentSpanId, CALLER_SPAN_ID, "its parent is the caller's span");
    const job = spans.find((s) => s.name === 'job run' && s.traceId === CALLER_TRACE_ID);
    t.truthy(job, `the job run is in the caller's trace\n${details}`);
    t.true(
      spans.some((s) => s.name === 'plugin datagen.openReader' && s.traceId === CALLER_TRACE_ID),
      'the connector read is in it too',
    );
  },
);

test.serial(
  'OTLP: the production bootstrap exports the spans over http/protobuf to OTEL_EXPORTER_OTLP_ENDPOINT',
  async (t) => {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const receiver = await startReceiver(t);
    const run = await runScenario('./services/telemetry/bootstrap.ts', 'otlp', {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const result = scenarioResult(run);
    const summary = receiver.requests.map((r) => ({
      method: r.method,
      path: r.path,
      contentType: r.contentType,
      bytes: r.body.length,
    }));
    const details = `received: ${JSON.stringify(summary)}\n${describeRun(run)}`;

    t.true(result.telemetryActive, `telemetry should be active\n${details}`);
    t.true(result.grpcInstrumented, `grpc-js should be patched by the instrumentation\n${details}`);
    const traces = receiver.requests.filter((r) => r.method === 'POST' && r.path === '/v1/traces');
    t.true(traces.length >= 1, `at least one POST /v1/traces\n${details}`);
    t.is(receiver.requests.length, traces.length, `nothing but POST /v1/traces was sent\n${details}`);
    for (const r of traces) {
      t.is(r.contentType?.split(';')[0]?.trim(), 'application/x-protobuf', `content type of an export\n${details}`);
      t.true(r.body.length > 0, `an export has a body\n${details}`);
    }
    t.true(
      traces.some((r) => r.body.includes(Buffer.from(METHOD, 'utf8'))),
      `an exported body contains the span name '${METHOD}'\n${details}`,
    );
  },
);

const sendsNothing = test.macro({
  async exec(t, env: (endpoint: string) => Record<string, string>) {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const receiver = await startReceiver(t);
    const run = await runScenario('./services/telemetry/bootstrap.ts', 'otlp', env(receiver.endpoint));
    const result = scenarioResult(run);
    const details = `received ${receiver.requests.length} request(s)\n${describeRun(run)}`;
    t.false(result.telemetryActive, `currentTelemetry() should be undefined\n${details}`);
    t.false(result.grpcInstrumented, `grpc-js should be left unpatched\n${details}`);
    t.like(
      result.resolved as object,
      { boundaries: { lowerBound: '0', upperBound: '10000' } },
      'the call itself succeeded',
    );
    t.is(receiver.requests.length, 0, details);
  },
  title: (provided = '') => `tracing off: ${provided}`,
});

(defaultPortFree ? test.serial : test.skip)(
  `tracing off: no OTEL_* variables: no telemetry, nothing sent to the OTLP default endpoint${defaultPortFree ? '' : ` (port ${DEFAULT_OTLP_PORT} is taken here, so nothing could listen there)`}`,
  async (t) => {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const run = await runScenario('./services/telemetry/bootstrap.ts', 'otlp');
    const result = scenarioResult(run);
    const details = `received ${defaultRequests.length} request(s)\n${describeRun(run)}`;
    t.false(result.telemetryActive, `currentTelemetry() should be undefined\n${details}`);
    t.false(result.grpcInstrumented, `grpc-js should be left unpatched\n${details}`);
    t.like(result.resolved as object, { boundaries: { lowerBound: '0', upperBound: '10000' } });
    t.is(defaultRequests.length, 0, details);
  },
);
test.serial('OTEL_TRACES_EXPORTER=none wins over an endpoint', sendsNothing, (endpoint) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_TRACES_EXPORTER: 'none',
}));
test.serial('OTEL_SDK_DISABLED=true wins over an endpoint', sendsNothing, (endpoint) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_SDK_DISABLED: 'true',
}));

test.serial('OTEL_TRACES_EXPORTER=console: spans are printed on stdout, nothing is sent over OTLP', async (t) => {
  t.timeout(CHILD_TIMEOUT_MS + 15_000);
  const receiver = await startReceiver(t);
  const run = await runScenario('./services/telemetry/bootstrap.ts', 'otlp', {
    OTEL_TRACES_EXPORTER: 'console',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const result = scenarioResult(run);
  const details = `received ${receiver.requests.length} request(s)\n${describeRun(run)}`;
  t.true(result.telemetryActive, `telemetry should be active\n${details}`);
  t.true(result.grpcInstrumented, `grpc-js should be patched by the instrumentation\n${details}`);
  // ConsoleSpanExporter prints each span as an object literal with its name and trace id.
  t.regex(run.stdout, new RegExp(`name: 'grpc\\.${METHOD.replaceAll('.', '\\.')}'`), details);
  t.regex(run.stdout, /traceId: '[0-9a-f]{32}'/, details);
  t.is(receiver.requests.length, 0, `the OTLP endpoint is not used with the console exporter\n${details}`);
});

test.serial(
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given, and OTEL_SERVICE_NAME names the service',
  async (t) => {
    t.timeout(CHILD_TIMEOUT_MS + 15_000);
    const receiver = await startReceiver(t);
    const serviceName = 'sluice-under-test-7f3a';
    const run = await runScenario('./services/telemetry/bootstrap.ts', 'otlp', {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/collector/traces`,
      OTEL_SERVICE_NAME: serviceName,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const result = scenarioResult(run);
    const details = `received: ${JSON.stringify(receiver.requests.map((r) => r.path))}\n${describeRun(run)}`;
    t.true(result.telemetryActive, `telemetry should be active\n${details}`);
    t.true(receiver.requests.length >= 1, `at least one export\n${details}`);
    t.true(
      receiver.requests.every((r) => r.method === 'POST' && r.path === '/collector/traces'),
      `every export went to the signal endpoint as given (no /v1/traces appended)\n${details}`,
    );
    t.true(
      receiver.requests.some((r) => r.body.includes(Buffer.from(serviceName, 'utf8'))),
      `an export carries the service name '${serviceName}'\n${details}`,
    );
  },
);
