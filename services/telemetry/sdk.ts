/**
 * The one place the OpenTelemetry SDK is configured. Domain and plugin code use @opentelemetry/api only;
 * this module is loaded first (through bootstrap.ts) so the gRPC instrumentation patches grpc-js
 * before any service imports it.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { type WorkerSpan, setWorkerSpanSink } from '../core/worker-spans.js';

export interface Telemetry {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  readonly exporter: SpanExporter;
  readonly serviceName?: string;
  /** Export each span as it ends (tests) instead of in batches. */
  readonly simple?: boolean;
}

let active: Telemetry | undefined;

/** Starts tracing with the given exporter and the gRPC instrumentation; idempotent. */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (active) return active;
  const resource = resourceFromAttributes({
    'service.name': options.serviceName ?? process.env.OTEL_SERVICE_NAME ?? 'sluice',
  });
  const processor = options.simple
    ? new SimpleSpanProcessor({ exporter: options.exporter })
    : new BatchSpanProcessor({ exporter: options.exporter });
  const provider = new TracerProvider({ resource, spanProcessors: [processor] });
  // Spans of jobs run on worker threads arrive finished, ids intact: they join the same export.
  setWorkerSpanSink((spans) => {
    for (const span of spans) processor.onEnd(readable(span, resource));
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  registerInstrumentations({ tracerProvider: provider, instrumentations: [new GrpcInstrumentation()] });
  active = { forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
  return active;
}

function readable(span: WorkerSpan, resource: ReadableSpan['resource']): ReadableSpan {
  return {
    ...span,
    spanContext: () => span.spanContext,
    ended: true,
    resource,
    events: span.events.map((e) => ({ ...e })),
  };
}

/** The running telemetry, if any: main() flushes it on shutdown. */
export function currentTelemetry(): Telemetry | undefined {
  return active;
}
