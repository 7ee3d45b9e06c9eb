/** What test/helpers/trace-scenario.ts and test/telemetry.test.ts agree on (kept apart so importing it runs nothing). */

/** Where test/helpers/otel-memory-bootstrap.ts leaves its InMemorySpanExporter on globalThis. */
export const MEMORY_EXPORTER_KEY = Symbol.for('sluice.test.memorySpanExporter');

/** The scenario prints exactly one stdout line starting with this, followed by a ScenarioResult as JSON. */
export const RESULT_PREFIX = 'SCENARIO_RESULT ';

export type ScenarioMode = 'memory' | 'otlp';

export interface SpanSummary {
  readonly name: string;
  /** @opentelemetry/api SpanKind (0 internal, 1 server, 2 client, ...). */
  readonly kind: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly attributes: Record<string, unknown>;
}

export interface ScenarioResult {
  readonly mode: ScenarioMode;
  /** Whether currentTelemetry() was defined when the scenario started. */
  readonly telemetryActive: boolean;
  /**
   * Whether the gRPC instrumentation patched grpc-js at all (Client.prototype.makeUnaryRequest is wrapped).
   * Not proof that the ESM loader hook ran: without it the prototype is still patched, but the ESM named
   * exports ts-proto clients use are not, so client spans are missing (the span assertions catch that).
   */
  readonly grpcInstrumented: boolean;
  readonly resolved: unknown;
  /** memory mode only: the finished spans after forceFlush(). */
  readonly spans?: SpanSummary[];
}

/** The W3C traceparent an external scheduler sends with its callback in the scenario. */
export const CALLER_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const CALLER_SPAN_ID = '00f067aa0ba902b7';
export const CALLER_TRACEPARENT = `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01`;
