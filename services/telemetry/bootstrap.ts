/**
 * Loaded with `node --import` before anything else. When the OTEL_* variables ask for traces it
 * registers the OpenTelemetry ESM loader hook (without it the gRPC instrumentation cannot patch grpc-js
 * under ESM) and starts the SDK with the OTLP exporter; otherwise it does nothing at all.
 */
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { exitOnOldNode } from '../core/node-version.js';
import { tracingRequested } from './env.js';

// First thing `npm start` runs: an old Node.js gets one line, not a stack trace about node:sqlite.
exitOnOldNode();

// Job worker threads inherit this --import; their spans go back to this thread (services/telemetry/worker.ts).
if (isMainThread && tracingRequested(process.env)) {
  // Only grpc-js needs wrapping; wrapping every module would slow start-up and trips over sources run
  // through a TypeScript loader.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: ['@grpc/grpc-js'] } });
  const { startTelemetry } = await import('./sdk.js');
  const kind = process.env.OTEL_TRACES_EXPORTER ?? 'otlp';
  if (kind === 'console') {
    const { ConsoleSpanExporter } = await import('@opentelemetry/sdk-trace');
    startTelemetry({ exporter: new ConsoleSpanExporter() });
  } else {
    // OTLP over HTTP/protobuf; endpoint, headers and timeout come from the standard OTEL_EXPORTER_OTLP_* variables.
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    startTelemetry({ exporter: new OTLPTraceExporter() });
  }
}
