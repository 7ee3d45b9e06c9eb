/**
 * Child-process scenario for test/telemetry.test.ts: starts Sluice, makes one ResolveBoundaries call,
 * closes, and prints one line `SCENARIO_RESULT <json>` on stdout.
 *
 *   memory: (with --import ./test/helpers/otel-memory-bootstrap.ts) flushes and prints the finished spans.
 *   otlp:   (with --import ./services/telemetry/bootstrap.ts) shuts the telemetry down, which flushes the
 *           batch to the OTLP endpoint, and prints whether telemetry was active at all.
 */
import { Client } from '@grpc/grpc-js';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { currentTelemetry } from '../../services/telemetry/sdk.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datagenToFile, schedule } from './operator.js';
import { bearer, call, startTestSluice } from './sluice.js';
import {
  CALLER_TRACEPARENT,
  MEMORY_EXPORTER_KEY,
  RESULT_PREFIX,
  type ScenarioMode,
  type ScenarioResult,
  type SpanSummary,
} from './trace-protocol.js';

function parseMode(arg: string | undefined): ScenarioMode {
  if (arg === 'memory' || arg === 'otlp') return arg;
  throw new Error(`unknown mode '${arg}' (expected memory or otlp)`);
}

const TOKEN = 'trace-token-for-tests';

async function main(mode: ScenarioMode): Promise<void> {
  const telemetryActive = currentTelemetry() !== undefined;
  // shimmer (used by the instrumentation) marks what it wrapped with __wrapped.
  const grpcInstrumented = Boolean((Client.prototype.makeUnaryRequest as { __wrapped?: boolean }).__wrapped);
  // The test gives a data folder of its own (SLUICE_DATA_DIR) and removes it, even if this process is killed.
  const given = process.env.SLUICE_DATA_DIR;
  const running = await startTestSluice({
    SLUICE_CALLBACK_TOKEN: TOKEN,
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
    ...(given ? { SLUICE_DATA_DIR: join(given, 'sluice') } : {}),
  });
  let resolved: unknown;
  const dir = given ? await mkdtemp(join(given, 'out-')) : await mkdtemp(join(tmpdir(), 'sluice-trace-'));
  try {
    resolved = await call(
      running.catalog.resolveBoundaries.bind(running.catalog),
      {
        connectorId: 'datagen',
        options: { intervalMs: 1000 },
        boundaries: { boundaryType: BoundaryType.BOUNDARY_TYPE_TIME, lowerBound: '0', upperBound: '10000' },
      },
      bearer(TOKEN),
    );
    // An external scheduler's window, carrying its own trace: the callback and the job join it.
    const nextYear = Date.UTC(new Date().getUTCFullYear() + 1, 0, 1);
    await running.sluice.operator!.createGroup(
      datagenToFile('g-trace', dir, {
        schedule: {
          ...schedule('g-trace'),
          scheduleEngine: 'None',
          startTime: nextYear,
          endTime: nextYear + 86_400_000,
        },
      }),
    );
    await running.sluice.operator!.approveGroup('g-trace', 0);
    await fetch(`http://127.0.0.1:${running.sluice.callbackPort}/inlong/manager/api/group/submitOfflineJob`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        traceparent: CALLER_TRACEPARENT,
      },
      // g-trace has engine None (a manual group): any well-formed bounds run. 0..5 are seconds on InLong's path.
      body: JSON.stringify({ groupId: 'g-trace', boundaryType: 'TIME', lowerBoundary: 0, upperBoundary: 5 }),
    });
    await running.sluice.operator!.idle();
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }

  let spans: SpanSummary[] | undefined;
  if (mode === 'memory') {
    const exporter = (globalThis as Record<symbol, unknown>)[MEMORY_EXPORTER_KEY] as InMemorySpanExporter | undefined;
    if (!exporter) throw new Error('no in-memory exporter: run with --import ./test/helpers/otel-memory-bootstrap.ts');
    await currentTelemetry()?.forceFlush();
    spans = exporter.getFinishedSpans().map((s) => ({
      name: s.name,
      kind: s.kind,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      // sdk-trace 2.x/3.x expose the parent as parentSpanContext (parentSpanId was removed in 2.0).
      parentSpanId: s.parentSpanContext?.spanId,
      attributes: { ...s.attributes },
    }));
  } else {
    await currentTelemetry()?.shutdown();
  }

  const result: ScenarioResult = { mode, telemetryActive, grpcInstrumented, resolved, ...(spans ? { spans } : {}) };
  await new Promise<void>((resolve) =>
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => resolve()),
  );
}

// Exit explicitly so a stray handle cannot keep the child (and the test) waiting.
Promise.resolve()
  .then(() => main(parseMode(process.argv[2])))
  .then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
