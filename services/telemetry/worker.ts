/**
 * Tracing inside a job worker thread: the spans of one job are collected, not exported, and go back to
 * the service's thread with the job's result (services/core/worker-spans.ts). Started only when the
 * service passed a trace context with the job, i.e. when the service itself traces.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { type ReadableSpan, type SpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { WorkerSpan } from '../core/worker-spans.js';

/** Spans kept per job at most: a runaway plugin cannot grow the result without bound. */
export const MAX_WORKER_SPANS = 10_000;

let collected: WorkerSpan[] = [];
let started = false;

const collector: SpanProcessor = {
  onStart: () => {},
  onEnd: (span: ReadableSpan) => {
    if (collected.length < MAX_WORKER_SPANS) collected.push(toWorkerSpan(span));
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/** Starts collecting this thread's spans (once per thread). */
export function startWorkerTracing(): void {
  if (started) return;
  started = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [collector] }));
}

/** The spans ended since the last call. */
export function drainWorkerSpans(): WorkerSpan[] {
  const out = collected;
  collected = [];
  return out;
}

function toWorkerSpan(span: ReadableSpan): WorkerSpan {
  const scope = span.instrumentationScope;
  return {
    name: span.name,
    kind: span.kind,
    spanContext: { ...span.spanContext() },
    ...(span.parentSpanContext ? { parentSpanContext: { ...span.parentSpanContext } } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    duration: span.duration,
    status: { ...span.status },
    attributes: { ...span.attributes },
    links: span.links.map((l) => ({ ...l, context: { ...l.context } })),
    events: span.events.map((e) => ({
      name: e.name,
      time: e.time,
      ...(e.attributes ? { attributes: e.attributes } : {}),
    })),
    instrumentationScope: {
      name: scope.name,
      ...(scope.version ? { version: scope.version } : {}),
      ...(scope.schemaUrl ? { schemaUrl: scope.schemaUrl } : {}),
    },
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}
