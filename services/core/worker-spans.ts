/**
 * Spans made in a job worker thread, as they cross to the service's thread. A worker has no exporter of
 * its own: it collects the spans of its job (services/telemetry/worker.ts) and the service hands them to
 * its own span processors (services/telemetry/sdk.ts), with their trace, span and parent ids unchanged,
 * so a job's connector hooks sit in the window's trace whether the job ran on a thread or not.
 */
import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';

/** A finished span, structured-clone safe (no functions, no resource). */
export interface WorkerSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly spanContext: SpanContext;
  readonly parentSpanContext?: SpanContext;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links: Link[];
  readonly events: { readonly name: string; readonly time: HrTime; readonly attributes?: Attributes }[];
  readonly instrumentationScope: { readonly name: string; readonly version?: string; readonly schemaUrl?: string };
  readonly droppedAttributesCount: number;
  readonly droppedEventsCount: number;
  readonly droppedLinksCount: number;
}

let sink: ((spans: readonly WorkerSpan[]) => void) | undefined;

/** Set by the telemetry SDK when tracing starts: where worker spans go. */
export function setWorkerSpanSink(fn: ((spans: readonly WorkerSpan[]) => void) | undefined): void {
  sink = fn;
}

/** Hands a worker's spans to the service's tracing; dropped when tracing is off. */
export function exportWorkerSpans(spans: readonly WorkerSpan[] | undefined): void {
  if (sink && spans && spans.length > 0) sink(spans);
}
